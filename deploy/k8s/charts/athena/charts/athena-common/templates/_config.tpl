{{/*
athena.toml for this service (dict "root" $ "v" $values "entry" $entry):
global.log as [log], then the service's `config` as its own section.
*/}}
{{- define "athena-common.configFile" -}}
# Rendered by Helm from the values `global.log` and `{{ .root.Chart.Name }}.config`.
{{- with .root.Values.global.log }}

[log]
{{- include "athena-common.toml.table" (dict "path" "log" "map" .) }}
{{- end }}

[{{ .entry.section }}]
{{- include "athena-common.toml.table" (dict "path" .entry.section "map" (.v.config | default dict)) }}
{{ end -}}

{{/*
Files the service reloads by itself (dict "root" $ "v" $values): the
orchestrator's routing policy (its backends' addresses merged with the
value `routingPolicy`), then the value `files`. Rendered as a YAML map of
name: content; empty when there are none.
*/}}
{{- define "athena-common.files" -}}
{{- $files := dict -}}
{{- if eq .root.Chart.Name "orchestrator" -}}
{{- $root := .root -}}
{{- $generated := dict "endpoints" (dict
      "small" (dict "url" (printf "%s/v1" (include "athena-common.url" (dict "root" $root "service" "router-small-llm"))) "model" "router-small-llm")
      "large" (dict "url" (printf "%s/v1" (include "athena-common.url" (dict "root" $root "service" "router-large-llm"))) "model" "router-large-llm")) -}}
{{- $policy := mustMergeOverwrite $generated (deepCopy (.v.routingPolicy | default dict)) -}}
{{- $_ := set $files "routing.yaml" (printf "# Rendered by Helm: the LLM routers of this release, merged with the value\n# orchestrator.routingPolicy. The orchestrator reloads it when it changes.\n%s" (toYaml $policy)) -}}
{{- end -}}
{{- range $name, $content := .v.files -}}
{{- $_ := set $files $name $content -}}
{{- end -}}
{{- if $files -}}
{{- toYaml $files -}}
{{- end -}}
{{- end -}}

{{- define "athena-common.configMaps" -}}
{{- $root := .root -}}
{{- $fullname := include "athena-common.fullname" $root -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ $fullname }}-config
  labels:
    {{- include "athena-common.labels" $root | nindent 4 }}
data:
  athena.toml: |
    {{- include "athena-common.configFile" . | nindent 4 }}
{{- $files := include "athena-common.files" (dict "root" $root "v" .v) }}
{{- if $files }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ $fullname }}-files
  labels:
    {{- include "athena-common.labels" $root | nindent 4 }}
data:
  {{- $files | nindent 2 }}
{{- end }}
{{- end -}}
