{{/*
The facts about each service that its image fixes, and who calls whom: one
table for every chart, so that the orchestrator's backend URLs, the
NetworkPolicies and the GPU images all follow from it.

  section     the service's section of athena.toml (and of ATHENA__SECTION__KEY)
  image       the image name (athena-<image>) and Dockerfiles/Dockerfile target
  component   app.kubernetes.io/component
  http        HTTP port: the API, gRPC (stt, tts), /healthz, /readyz, /metrics
  wyoming     Wyoming port, where the service speaks it
  role        athena-llm --role
  gpuVendors  GPU vendors the service has a back-end for (Dockerfiles/README.md)
  calls       services it calls (its NetworkPolicy egress, their ingress)
  datastores  redis, qdrant: what it may reach when they are configured
  models      it loads models: the models volume is mounted
  internet    it fetches from outside the cluster when allowed
              (models, calendars, pages); networkPolicy.internetEgress
  kedaQuery   the Prometheus query a KEDA ScaledObject scales on by default;
              SELECTOR is replaced by the service's own label selector
  kedaThreshold  its target value per replica
*/}}
{{- define "athena-common.catalog" -}}
orchestrator:
  section: orchestrator
  image: orchestrator
  component: pipeline
  http: 8700
  wyoming: 10700
  gpuVendors: []
  calls: [stt, tts, router-small-llm, router-large-llm, rag-api, ha-bridge, mode-service]
  datastores: [redis]
  internet: false
  kedaQuery: sum(wyoming_connections_open{SELECTOR})
  kedaThreshold: "50"
stt:
  section: stt
  image: stt
  component: engine
  http: 8300
  wyoming: 10300
  gpuVendors: [nvidia, amd]
  calls: []
  datastores: []
  models: true
  internet: true
  kedaQuery: sum(stt_queue_waiting{SELECTOR})
  kedaThreshold: "2"
tts:
  section: tts
  image: tts
  component: engine
  http: 8200
  wyoming: 10200
  gpuVendors: [nvidia]
  calls: []
  datastores: []
  models: true
  internet: true
  kedaQuery: sum(rate(tts_sentences_total{SELECTOR}[1m]))
  kedaThreshold: "4"
router-small-llm:
  section: router_small_llm
  image: llm
  role: small
  component: engine
  http: 8400
  gpuVendors: [nvidia]
  calls: []
  datastores: []
  models: true
  internet: true
  kedaQuery: sum(llm_queue_depth{SELECTOR})
  kedaThreshold: "2"
router-large-llm:
  section: router_large_llm
  image: llm
  role: large
  component: engine
  http: 8401
  gpuVendors: [nvidia]
  calls: []
  datastores: []
  models: true
  internet: true
  kedaQuery: sum(llm_queue_depth{SELECTOR})
  kedaThreshold: "2"
rag-api:
  section: rag_api
  image: rag-api
  component: knowledge
  http: 8500
  gpuVendors: [nvidia]
  calls: []
  datastores: [qdrant]
  models: true
  internet: true
  kedaQuery: sum(rate(http_requests_total{SELECTOR,route="/v1/search"}[1m]))
  kedaThreshold: "20"
ha-bridge:
  section: ha_bridge
  image: ha-bridge
  component: integration
  http: 8600
  gpuVendors: []
  calls: []
  datastores: []
  internet: false
  homeAssistant: true
  kedaQuery: sum(rate(http_requests_total{SELECTOR}[1m]))
  kedaThreshold: "50"
mode-service:
  section: mode_service
  image: mode-service
  component: integration
  http: 8800
  gpuVendors: []
  calls: []
  datastores: [redis]
  internet: true
  kedaQuery: sum(rate(http_requests_total{SELECTOR}[1m]))
  kedaThreshold: "50"
{{- end -}}

{{/* This chart's entry of the catalog (by its name, which an alias sets). */}}
{{- define "athena-common.entry" -}}
{{- $catalog := fromYaml (include "athena-common.catalog" .) -}}
{{- $entry := get $catalog .Chart.Name -}}
{{- if not $entry -}}
{{- fail (printf "athena-common: no catalog entry for chart %q" .Chart.Name) -}}
{{- end -}}
{{- toYaml $entry -}}
{{- end -}}
