{{/*
Every service's values, before its chart's values (and the umbrella chart's
`<service>:` block) are merged over them. Each key is documented here once.
*/}}
{{- define "athena-common.defaults" -}}
# Deploy this service at all (the umbrella chart's condition).
enabled: true
# Pods when autoscaling is off.
replicaCount: 1
image:
  # Image name under global.image.registry; "" = athena-<catalog image>.
  repository: ""
  # "" = global.image.tag, else the chart's appVersion; a suffix -cpu, -cuda
  # or -rocm is added for the accelerator the pod gets.
  tag: ""
  # "" = global.image.pullPolicy.
  pullPolicy: ""
# This service's section of athena.toml, as YAML (README.md, "Configuration",
# lists the keys): mounted at /etc/athena/config/athena.toml. A change rolls
# the pods (checksum/config annotation).
config: {}
# Files mounted at /etc/athena/files/<name> and NOT rolled on change: for
# files the service reloads by itself (mode-service's policy_file, the
# orchestrator's intents). Name: content.
files: {}
# Extra environment variables, name: value (ATHENA__SECTION__KEY overrides
# the config file).
env: {}
# Extra environment entries as Kubernetes EnvVar objects (valueFrom secrets).
extraEnv: []
# CPU and memory; the profiles size them. GPUs come from `gpu`, not here.
resources:
  requests:
    cpu: 100m
    memory: 128Mi
  limits:
    cpu: "1"
    memory: 512Mi
gpu:
  # GPUs this service asks for when global.gpu.enabled and the vendor is one
  # it has a back-end for (otherwise it runs on the CPU image).
  count: 0
  # Overrides the vendor's resource name, e.g. nvidia.com/mig-1g.10gb.
  resourceName: ""
# Extra pod annotations and labels.
podAnnotations: {}
podLabels: {}
# Scheduling. A pod with a GPU also gets global.gpu.nodeSelector and
# global.gpu.tolerations.
nodeSelector: {}
tolerations: []
affinity: {}
topologySpreadConstraints: []
priorityClassName: ""
# Longer than the services' drain (shutdown.grace_period_secs, 20 s).
terminationGracePeriodSeconds: 30
service:
  # The ClusterIP Service of the HTTP port (and gRPC, /metrics).
  type: ClusterIP
  annotations: {}
# The Wyoming port's own Service, for clients outside the cluster:
# satellites (orchestrator) and Home Assistant (stt, tts). Only for services
# that speak Wyoming.
wyoming:
  service:
    # Off: Wyoming is reachable in the cluster only, on the main Service.
    enabled: false
    # NodePort (any node's IP) or LoadBalancer (MetalLB or a cloud's).
    type: NodePort
    # Fixed node port, so satellites can be configured once; null = any.
    nodePort: null
    # A fixed LoadBalancer address, asked for through the annotation below
    # (MetalLB); "" = whatever the load balancer assigns.
    loadBalancerIP: ""
    # The annotation that carries loadBalancerIP.
    loadBalancerIPAnnotation: metallb.universe.tf/loadBalancerIPs
    # "" = Local for a LoadBalancer (keeps the client's address, for
    # NetworkPolicies and logs; only nodes running a pod answer), Cluster for
    # a NodePort (any node answers). Or say Local or Cluster.
    externalTrafficPolicy: ""
    annotations: {}
probes:
  # Until the first /healthz answers: long enough for a first model download.
  startup:
    periodSeconds: 10
    failureThreshold: 60
  # /healthz: the process serves HTTP.
  liveness:
    periodSeconds: 10
    timeoutSeconds: 3
    failureThreshold: 3
  # /readyz: the model is loaded, backends reachable, not draining.
  readiness:
    periodSeconds: 5
    timeoutSeconds: 3
    failureThreshold: 2
persistence:
  # /var/lib/athena/data: the service's state (rag-api's embedded index,
  # mode-service's files when it has no Redis). Off = emptyDir.
  data:
    enabled: false
    # Use this claim instead of creating one.
    existingClaim: ""
    # "" = the cluster's default StorageClass.
    storageClass: ""
    accessModes: [ReadWriteOnce]
    size: 1Gi
  # The models volume (/var/lib/athena/models) is shared: global.models.
# Horizontal Pod Autoscaler on CPU (and memory) utilisation.
autoscaling:
  enabled: false
  minReplicas: 1
  maxReplicas: 3
  targetCPUUtilizationPercentage: 70
  # 0 = not used.
  targetMemoryUtilizationPercentage: 0
  # autoscaling/v2 behavior, as is.
  behavior: {}
# A KEDA ScaledObject on this service's own Prometheus metrics (replaces the
# HPA above; needs KEDA and Prometheus).
keda:
  enabled: false
  minReplicas: 1
  maxReplicas: 4
  pollingInterval: 15
  cooldownPeriod: 300
  # Prometheus' address as KEDA reaches it.
  serverAddress: http://prometheus-operated.monitoring.svc:9090
  # "" = the catalog's query for this service (its queue or request rate).
  query: ""
  # "" = the catalog's target value per replica.
  threshold: ""
podDisruptionBudget:
  enabled: true
  # One of the two; maxUnavailable 1 never blocks a node drain.
  maxUnavailable: 1
  minAvailable: null
serviceAccount:
  create: true
  # e.g. a cloud identity (IRSA, Workload Identity).
  annotations: {}
  # Mount an API token: only a pod that talks to the Kubernetes API needs one.
  automountToken: false
rbac:
  # A Role that lets the pod read its own files ConfigMap (the orchestrator's
  # routing policy) and nothing else.
  create: false
networkPolicy:
  # Let the pod reach HTTPS/HTTP outside the cluster (global.networkPolicy.internet):
  # model downloads, calendars, pages. Only services the catalog marks so.
  internetEgress: true
  # More NetworkPolicy ingress and egress rules, as is.
  extraIngress: []
  extraEgress: []
ingress:
  # An Ingress for this service's HTTP API (global.ingress must be enabled).
  enabled: false
  # "" = <service>.<global.ingress.domain>.
  host: ""
  paths: [/]
  annotations: {}
{{- end -}}

{{/* The merged values: defaults, then the chart's (and the parent's) values. */}}
{{- define "athena-common.values" -}}
{{- $defaults := fromYaml (include "athena-common.defaults" .) -}}
{{- $own := omit .Values "global" -}}
{{- toYaml (mustMergeOverwrite $defaults (deepCopy $own)) -}}
{{- end -}}
