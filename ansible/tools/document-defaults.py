#!/usr/bin/python3
"""document-defaults.py -- rewrite the lower half of each example group_vars file: every
variable of the roles that group runs, commented out, with its default and its comment, as
roles/<role>/defaults/main.yml states them. The site settings above the marker line stay.
Run after changing a role's defaults; the converge test checks that none is missing."""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GROUP_VARS = os.path.join(ROOT, "inventories", "example", "group_vars")
MARKER = "# ---- every setting of the roles below, with its default (uncomment to change) ----"
ROLES = {
    "all/main.yml": ["aegis_defaults", "common"],
    "resolvers.yml": ["unbound", "aegis_resolver"],
    "tenantd.yml": ["aegis_tenantd"],
    "portal.yml": ["aegis_portal_api"],
    "logpipe.yml": ["aegis_logpipe"],
    "postgres.yml": ["postgresql"],
    "kafka.yml": ["kafka"],
}


def commented(role):
    out = ["", "# == role %s (roles/%s/defaults/main.yml)" % (role, role)]
    with open(os.path.join(ROOT, "roles", role, "defaults", "main.yml")) as f:
        for line in f.read().splitlines():
            if line == "---" or not line.strip():
                continue
            out.append(line if line.startswith("#") else "# " + line)
    return out


for name, roles in ROLES.items():
    path = os.path.join(GROUP_VARS, name)
    with open(path) as f:
        head = f.read().split(MARKER)[0].rstrip("\n")
    lines = [head, "", MARKER]
    for role in roles:
        lines += commented(role)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
