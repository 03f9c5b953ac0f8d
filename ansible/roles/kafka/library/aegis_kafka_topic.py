#!/usr/bin/python3
# aegis_kafka_topic -- make a Kafka topic exist with given partitions, replication and config.
# Idempotent: reports a change only when it created the topic, added partitions or changed a
# setting. Uses Debian's python3-confluent-kafka (librdkafka) admin client.
"""Ansible module: ensure one Kafka topic."""

DOCUMENTATION = r"""
module: aegis_kafka_topic
short_description: Ensure a Kafka topic with partitions, replication factor and config
description:
  - Creates the topic if missing; grows its partition count; sets the given topic-level
    config entries (other entries keep their broker defaults). A replication factor
    different from the existing topic's is an error (reassignment is an operator's decision).
options:
  bootstrap:
    description: Comma-separated HOST:PORT list of brokers.
    type: str
    required: true
  name:
    description: Topic name.
    type: str
    required: true
  partitions:
    description: Partition count (only ever grown).
    type: int
    required: true
  replication_factor:
    description: Copies of each partition.
    type: int
    required: true
  config:
    description: Topic-level settings, name to value.
    type: dict
    default: {}
  timeout:
    description: Seconds to wait for the cluster.
    type: int
    default: 30
author: Aegis
"""

EXAMPLES = r"""
- name: Query-log topic
  aegis_kafka_topic:
    bootstrap: kafka1:9092
    name: aegis.querylog
    partitions: 24
    replication_factor: 3
    config: {retention.ms: "604800000"}
"""

RETURN = r"""
actions:
  description: What was done (created, partitions, config).
  type: list
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule


def topic_config(admin, name, timeout):
    from confluent_kafka.admin import ConfigResource
    resource = ConfigResource(ConfigResource.Type.TOPIC, name)
    described = admin.describe_configs([resource], request_timeout=timeout)[resource].result(timeout)
    return {k: v for k, v in described.items() if not v.is_default}


def run(module):
    from confluent_kafka.admin import AdminClient, NewTopic, NewPartitions, ConfigResource

    p = module.params
    name, timeout = p["name"], p["timeout"]
    want_config = {k: str(v) for k, v in p["config"].items()}
    admin = AdminClient({"bootstrap.servers": p["bootstrap"], "socket.timeout.ms": timeout * 1000})
    meta = admin.list_topics(timeout=timeout)
    actions = []

    if name not in meta.topics or meta.topics[name].error is not None:
        actions.append("created")
        if not module.check_mode:
            new = NewTopic(name, num_partitions=p["partitions"],
                           replication_factor=p["replication_factor"], config=want_config)
            admin.create_topics([new], request_timeout=timeout)[name].result(timeout)
        return actions

    partitions = meta.topics[name].partitions
    have_rf = len(next(iter(partitions.values())).replicas)
    if have_rf != p["replication_factor"]:
        module.fail_json(msg="topic %s has replication factor %d, not %d: reassign its partitions"
                         " by hand" % (name, have_rf, p["replication_factor"]))
    if len(partitions) > p["partitions"]:
        module.fail_json(msg="topic %s has %d partitions; Kafka cannot shrink it to %d"
                         % (name, len(partitions), p["partitions"]))
    if len(partitions) < p["partitions"]:
        actions.append("partitions %d -> %d" % (len(partitions), p["partitions"]))
        if not module.check_mode:
            admin.create_partitions([NewPartitions(name, p["partitions"])],
                                    request_timeout=timeout)[name].result(timeout)

    have = topic_config(admin, name, timeout)
    if any(have.get(k) is None or have[k].value != v for k, v in want_config.items()):
        actions.append("config")
        if not module.check_mode:
            # AlterConfigs replaces the topic's whole set of overrides: send the wanted ones.
            resource = ConfigResource(ConfigResource.Type.TOPIC, name, set_config=want_config)
            admin.alter_configs([resource], request_timeout=timeout)[resource].result(timeout)
    return actions


def main():
    module = AnsibleModule(
        argument_spec={
            "bootstrap": {"type": "str", "required": True},
            "name": {"type": "str", "required": True},
            "partitions": {"type": "int", "required": True},
            "replication_factor": {"type": "int", "required": True},
            "config": {"type": "dict", "default": {}},
            "timeout": {"type": "int", "default": 30},
        },
        supports_check_mode=True,
    )
    try:
        import confluent_kafka  # noqa: F401 -- present check, with a useful message
    except ImportError:
        module.fail_json(msg="python3-confluent-kafka is missing on the host")
    try:
        actions = run(module)
    except Exception as e:  # pylint: disable=broad-except -- KafkaException and timeouts
        module.fail_json(msg="topic %s: %s" % (module.params["name"], e))
    module.exit_json(changed=bool(actions), actions=actions)


if __name__ == "__main__":
    main()
