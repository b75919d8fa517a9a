# Makefile fragment: local Kafka for dev and tests. Include from the root Makefile:
#     include deploy/kafka/kafka.mk
# The script path comes from this file's own location, captured at include time
# (MAKEFILE_LIST grows with every later include, so it must be read right here), so
# it works whatever directory make is run from and whatever the includer sets.
KAFKA_MK_DIR := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
KAFKA_SH := bash "$(KAFKA_MK_DIR)/kafka.sh"

.PHONY: kafka-jars kafka-up kafka-down kafka-status kafka-cluster-up kafka-cluster-down kafka-wipe

kafka-jars: ## Fetch the Kafka broker jars (once; again only when pom.xml changes)
	$(KAFKA_SH) jars

# PROFILE=secure: the node of the secure profile instead (SASL/SCRAM-SHA-512 over TLS, a user
# and ACLs per service, on 127.0.0.1:9096; see deploy/kafka/README.md). Unset: the default node.
kafka-up: ## Start the single-node broker on 127.0.0.1:9092 (no-op if running); PROFILE=secure: the SASL/TLS node on 9096
	$(KAFKA_SH) $(if $(filter secure,$(PROFILE)),secure-start,start)

kafka-down: ## Stop the single-node broker (PROFILE=secure: the secure node)
	$(KAFKA_SH) $(if $(filter secure,$(PROFILE)),secure-stop,stop)

kafka-status: ## Show running/stopped for the single node and each cluster node
	$(KAFKA_SH) status

kafka-cluster-up: ## Start the 3-node cluster on 127.0.0.1:19092-19094
	$(KAFKA_SH) cluster-start

kafka-cluster-down: ## Stop the 3-node cluster
	$(KAFKA_SH) cluster-stop

# The local stack's databases and Faust tables go too: they hold offsets and state of the topics
# being deleted (Faust refuses to start on a table ahead of its changelog).
kafka-wipe: ## Stop everything and delete all Kafka data and the local stack's state (keeps the jars)
	$(KAFKA_SH) wipe
	rm -rf $(RUN_DIR)/faust $(RUN_DIR)/db
