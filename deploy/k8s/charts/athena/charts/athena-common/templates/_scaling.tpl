{{/* HorizontalPodAutoscaler on CPU (and memory) utilisation; not with KEDA. */}}
{{- define "athena-common.hpa" -}}
{{- $root := .root -}}
{{- $a := .v.autoscaling -}}
{{- if and $a.enabled (not .v.keda.enabled) -}}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "athena-common.fullname" $root }}
  labels:
    {{- include "athena-common.labels" $root | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "athena-common.fullname" $root }}
  minReplicas: {{ $a.minReplicas }}
  maxReplicas: {{ $a.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $a.targetCPUUtilizationPercentage }}
    {{- if $a.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ $a.targetMemoryUtilizationPercentage }}
    {{- end }}
  {{- with $a.behavior }}
  behavior:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
{{- end -}}

{{/*
KEDA ScaledObject driven by the service's own Prometheus metrics (its queue
depth or request rate, from the catalog unless keda.query says otherwise).
*/}}
{{- define "athena-common.scaledObject" -}}
{{- $root := .root -}}
{{- $k := .v.keda -}}
{{- if $k.enabled -}}
{{- $selector := printf "namespace=%q,service=%q" $root.Release.Namespace (include "athena-common.fullname" $root) -}}
{{- $query := $k.query | default (replace "SELECTOR" $selector .entry.kedaQuery) -}}
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: {{ include "athena-common.fullname" $root }}
  labels:
    {{- include "athena-common.labels" $root | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "athena-common.fullname" $root }}
  minReplicaCount: {{ $k.minReplicas }}
  maxReplicaCount: {{ $k.maxReplicas }}
  pollingInterval: {{ $k.pollingInterval }}
  cooldownPeriod: {{ $k.cooldownPeriod }}
  triggers:
    - type: prometheus
      metadata:
        serverAddress: {{ $k.serverAddress | quote }}
        query: {{ $query | quote }}
        threshold: {{ $k.threshold | default .entry.kedaThreshold | quote }}
{{- end -}}
{{- end -}}

{{/* PodDisruptionBudget: maxUnavailable (never blocks a drain) or minAvailable. */}}
{{- define "athena-common.pdb" -}}
{{- $root := .root -}}
{{- $p := .v.podDisruptionBudget -}}
{{- if $p.enabled -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "athena-common.fullname" $root }}
  labels:
    {{- include "athena-common.labels" $root | nindent 4 }}
spec:
  {{- if not (kindIs "invalid" $p.minAvailable) }}
  minAvailable: {{ $p.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $p.maxUnavailable }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "athena-common.selectorLabels" $root | nindent 6 }}
{{- end -}}
{{- end -}}
