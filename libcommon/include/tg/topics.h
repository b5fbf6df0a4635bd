/* Layer 0 (base).
 * Topic names of the pipeline (see proto/topics.md). Every name is prefixed
 * with TOPIC_PREFIX at run time through tg_topic(). */
#ifndef TG_TOPICS_H
#define TG_TOPICS_H

#define TG_TOPIC_TRIGGER "pipeline.trigger"
#define TG_TOPIC_ODATA_DONE "pipeline.odata-sync.completed"
#define TG_TOPIC_VIRTUAL_DONE "pipeline.virtual-entities.completed"
#define TG_TOPIC_GRAPH_DONE "pipeline.graph.completed"
#define TG_TOPIC_STEP_FAILED "pipeline.step.failed"
#define TG_TOPIC_RETRY_1 "pipeline.retry.1m"
#define TG_TOPIC_RETRY_2 "pipeline.retry.5m"
#define TG_TOPIC_DEAD_LETTER "pipeline.dead-letter"
/* Every topic above, for an initialiser: {TG_TOPICS_ALL}. */
#define TG_TOPICS_ALL                                                                              \
    TG_TOPIC_TRIGGER, TG_TOPIC_ODATA_DONE, TG_TOPIC_VIRTUAL_DONE, TG_TOPIC_GRAPH_DONE,             \
        TG_TOPIC_STEP_FAILED, TG_TOPIC_RETRY_1, TG_TOPIC_RETRY_2, TG_TOPIC_DEAD_LETTER

/* Worker ids, as in the specification. */
#define TG_WORKER_ODATA "odata-sync-worker"
#define TG_WORKER_VIRTUAL "virtual-entities-generator"
#define TG_WORKER_GRAPH "graph-builder"

/* Step timeouts of the specification, in seconds: the defaults of each
 * worker's STEP_TIMEOUT_S and of the orchestrator's WORKER_TIMEOUT_S_<n>. */
#define TG_TIMEOUT_S_ODATA 600
#define TG_TIMEOUT_S_VIRTUAL 300
#define TG_TIMEOUT_S_GRAPH 600

/* Event schema names carried in the envelope's "schema" field. */
#define TG_SCHEMA_TRIGGER "pipeline.trigger"
#define TG_SCHEMA_ODATA_DONE "odata-sync.completed"
#define TG_SCHEMA_VIRTUAL_DONE "virtual-entities.completed"
#define TG_SCHEMA_GRAPH_DONE "graph.completed"
#define TG_SCHEMA_STEP_FAILED "step.failed"
#define TG_SCHEMA_DEAD_LETTER "dead-letter"
/* The orchestrator's own event on a worker's input topic: it starts that
 * worker without the completion it usually consumes (proto/topics.md).
 * Every worker accepts it besides its input schema. */
#define TG_SCHEMA_HANDOVER "pipeline.handover"

#endif
