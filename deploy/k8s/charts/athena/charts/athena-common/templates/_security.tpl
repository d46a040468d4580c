{{/* The service's own ServiceAccount (no API token unless asked for). */}}
{{- define "athena-common.serviceAccount" -}}
{{- $root := .root -}}
{{- if .v.serviceAccount.create -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "athena-common.fullname" $root }}
  labels:
    {{- include "athena-common.labels" $root | nindent 4 }}
  {{- with .v.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: {{ .v.serviceAccount.automountToken }}
{{- end -}}
{{- end -}}

{{/*
RBAC: read access to this service's own files ConfigMap (the orchestrator's
routing policy, for tools that reload it through the API), nothing more.
*/}}
{{- define "athena-common.rbac" -}}
{{- $root := .root -}}
{{- if .v.rbac.create -}}
{{- $fullname := include "athena-common.fullname" $root -}}
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ $fullname }}
  labels:
    {{- include "athena-common.labels" $root | nindent 4 }}
rules:
  - apiGroups: [""]
    resources: [configmaps]
    resourceNames: [{{ printf "%s-files" $fullname | quote }}]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ $fullname }}
  labels:
    {{- include "athena-common.labels" $root | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ $fullname }}
subjects:
  - kind: ServiceAccount
    name: {{ $fullname }}
    namespace: {{ $root.Release.Namespace }}
{{- end -}}
{{- end -}}

{{/* A pod of another Athena service of this release, as a NetworkPolicy peer. */}}
{{- define "athena-common.peer" -}}
- podSelector:
    matchLabels:
      app.kubernetes.io/name: {{ .service }}
      app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/*
The service's NetworkPolicy: on top of the release's default deny (and its
DNS rule), exactly the flows this service has: who calls it, whom it calls
(the catalog), its data stores, Home Assistant, satellites, Prometheus, the
ingress controller, and the internet where allowed. A rule whose peers are
an empty list would allow everyone, so an empty list leaves its rule out.
*/}}
{{- define "athena-common.networkPolicy" -}}
{{- $root := .root -}}
{{- $v := .v -}}
{{- $entry := .entry -}}
{{- $g := $root.Values.global -}}
{{- $np := $g.networkPolicy -}}
{{- if $np.enabled -}}
{{- $catalog := fromYaml (include "athena-common.catalog" $root) -}}
{{- $callers := list -}}
{{- range $name, $other := $catalog }}
{{- if has $root.Chart.Name $other.calls }}
{{- $callers = append $callers $name }}
{{- end }}
{{- end -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "athena-common.fullname" $root }}
  labels:
    {{- include "athena-common.labels" $root | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "athena-common.selectorLabels" $root | nindent 6 }}
  policyTypes: [Ingress, Egress]
  ingress:
    {{- if $callers }}
    # The services that call this one.
    - from:
        {{- range $callers }}
        {{- include "athena-common.peer" (dict "root" $root "service" .) | nindent 8 }}
        {{- end }}
      ports:
        - { protocol: TCP, port: {{ $entry.http }} }
    {{- end }}
    {{- with $np.prometheus.from }}
    # Prometheus scrapes /metrics.
    - from:
        {{- toYaml . | nindent 8 }}
      ports:
        - { protocol: TCP, port: {{ $entry.http }} }
    {{- end }}
    {{- if and $g.ingress.enabled $v.ingress.enabled $np.ingressController.from }}
    # The ingress controller, for the HTTP API.
    - from:
        {{- toYaml $np.ingressController.from | nindent 8 }}
      ports:
        - { protocol: TCP, port: {{ $entry.http }} }
    {{- end }}
    {{- if and $entry.wyoming (eq $root.Chart.Name "orchestrator") $np.satellites.from }}
    # Satellites on Wyoming.
    - from:
        {{- toYaml $np.satellites.from | nindent 8 }}
      ports:
        - { protocol: TCP, port: {{ $entry.wyoming }} }
    {{- else if and $entry.wyoming (ne $root.Chart.Name "orchestrator") $g.homeAssistant.from }}
    # Home Assistant's Wyoming integration.
    - from:
        {{- toYaml $g.homeAssistant.from | nindent 8 }}
      ports:
        - { protocol: TCP, port: {{ $entry.wyoming }} }
    {{- end }}
    {{- with $v.networkPolicy.extraIngress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  egress:
    {{- range $entry.calls }}
    {{- $callee := get $catalog . }}
    - to:
        {{- include "athena-common.peer" (dict "root" $root "service" .) | nindent 8 }}
      ports:
        - { protocol: TCP, port: {{ $callee.http }} }
    {{- end }}
    {{- if has "redis" $entry.datastores }}
    {{- if $g.redis.enabled }}
    # The bundled Redis.
    - to:
        - podSelector:
            matchLabels:
              app.kubernetes.io/name: redis
              app.kubernetes.io/instance: {{ $root.Release.Name }}
      ports:
        - { protocol: TCP, port: 6379 }
    {{- else if and $g.redis.address $g.redis.to }}
    # An external Redis.
    - to:
        {{- toYaml $g.redis.to | nindent 8 }}
      ports:
        - { protocol: TCP, port: {{ $g.redis.port }} }
    {{- end }}
    {{- end }}
    {{- if has "qdrant" $entry.datastores }}
    {{- if $g.qdrant.enabled }}
    # The bundled Qdrant (gRPC; HTTP for its health).
    - to:
        - podSelector:
            matchLabels:
              app.kubernetes.io/name: qdrant
              app.kubernetes.io/instance: {{ $root.Release.Name }}
      ports:
        - { protocol: TCP, port: 6334 }
        - { protocol: TCP, port: 6333 }
    {{- else if and $g.qdrant.url $g.qdrant.to }}
    # An external Qdrant.
    - to:
        {{- toYaml $g.qdrant.to | nindent 8 }}
      ports:
        - { protocol: TCP, port: {{ $g.qdrant.port }} }
    {{- end }}
    {{- end }}
    {{- if and $entry.homeAssistant $g.homeAssistant.to }}
    # Home Assistant's REST and WebSocket APIs.
    - to:
        {{- toYaml $g.homeAssistant.to | nindent 8 }}
      ports:
        {{- range $g.homeAssistant.ports }}
        - { protocol: TCP, port: {{ . }} }
        {{- end }}
    {{- end }}
    {{- if and (eq $root.Chart.Name "orchestrator") $np.satellites.dial $np.satellites.to }}
    # Satellites the orchestrator dials itself (orchestrator.config.satellites).
    - to:
        {{- toYaml $np.satellites.to | nindent 8 }}
      ports:
        - { protocol: TCP, port: 10700 }
    {{- end }}
    {{- if and $entry.internet $v.networkPolicy.internetEgress }}
    # Outside the cluster: model downloads, calendars, pages.
    - to:
        - ipBlock:
            {{- toYaml $np.internet.ipBlock | nindent 12 }}
      ports:
        {{- range $np.internet.ports }}
        - { protocol: TCP, port: {{ . }} }
        {{- end }}
    {{- end }}
    {{- with $v.networkPolicy.extraEgress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}
{{- end -}}
