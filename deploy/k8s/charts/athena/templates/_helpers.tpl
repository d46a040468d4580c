{{/* Labels of the release-wide objects (not one service's). */}}
{{- define "athena.labels" -}}
app.kubernetes.io/name: athena
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: athena
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 }}
{{- end -}}

{{/* A pod of one of this release's services, as a NetworkPolicy peer. */}}
{{- define "athena.peer" -}}
- podSelector:
    matchLabels:
      app.kubernetes.io/name: {{ .service }}
      app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}
