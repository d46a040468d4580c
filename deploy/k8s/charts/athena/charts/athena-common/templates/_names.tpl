{{/* A service's object name: <release>-<service>. */}}
{{- define "athena-common.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Another service's host name: (dict "root" $ "service" "stt"). */}}
{{- define "athena-common.host" -}}
{{- printf "%s-%s" .root.Release.Name .service | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Another service's base URL: (dict "root" $ "service" "stt"). */}}
{{- define "athena-common.url" -}}
{{- $catalog := fromYaml (include "athena-common.catalog" .root) -}}
{{- $entry := get $catalog .service -}}
{{- printf "http://%s:%v" (include "athena-common.host" .) $entry.http -}}
{{- end -}}

{{- define "athena-common.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "athena-common.labels" -}}
{{ include "athena-common.selectorLabels" . }}
app.kubernetes.io/component: {{ (fromYaml (include "athena-common.entry" .)).component }}
app.kubernetes.io/part-of: athena
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 }}
{{- end -}}

{{/*
The image: (dict "root" $ "v" $values "entry" $entry "gpu" $gpu).
<registry>/<repository>:<tag>-<accelerator>.
*/}}
{{- define "athena-common.image" -}}
{{- $global := .root.Values.global.image | default dict -}}
{{- $repository := .v.image.repository | default (printf "athena-%s" .entry.image) -}}
{{- $tag := .v.image.tag | default $global.tag | default .root.Chart.AppVersion -}}
{{- $registry := $global.registry | default "" -}}
{{- if $registry -}}
{{- printf "%s/%s:%s-%s" (trimSuffix "/" $registry) $repository $tag .gpu.accel -}}
{{- else -}}
{{- printf "%s:%s-%s" $repository $tag .gpu.accel -}}
{{- end -}}
{{- end -}}

{{/* TOML key: bare when it may be, quoted otherwise. */}}
{{- define "athena-common.toml.key" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . -}}{{ . }}{{- else -}}{{ toJson . }}{{- end -}}
{{- end -}}

{{/*
A TOML value. Helm reads YAML numbers as floats: whole ones are written as
integers, or a `threads = 2.0` would not load into an integer setting.
*/}}
{{- define "athena-common.toml.value" -}}
{{- if kindIs "string" . -}}{{ toJson . }}
{{- else if kindIs "bool" . -}}{{ . }}
{{- else if kindIs "float64" . -}}
{{- if eq . (float64 (int64 .)) -}}{{ int64 . }}{{- else -}}{{ . }}{{- end -}}
{{- else if kindIs "slice" . -}}
[{{- range $i, $item := . }}{{ if $i }}, {{ end }}{{ include "athena-common.toml.value" $item }}{{ end -}}]
{{- else if kindIs "map" . -}}
{ {{- $first := true -}}{{- range $k, $item := . }}{{ if not $first }}, {{ end }}{{ $first = false }}{{ include "athena-common.toml.key" $k }} = {{ include "athena-common.toml.value" $item }}{{ end -}} }
{{- else -}}{{ . }}
{{- end -}}
{{- end -}}

{{/*
A TOML table (dict "path" "stt" "map" $config): its keys first, then its
sub-tables, then arrays of tables (a list of mappings, e.g. rag_api.folders).
Null values are left out (TOML has none).
*/}}
{{- define "athena-common.toml.table" -}}
{{- $path := .path -}}
{{- range $k, $v := .map }}
{{- $isTables := and (kindIs "slice" $v) (gt (len $v) 0) (kindIs "map" (first $v)) }}
{{- if and (not (kindIs "invalid" $v)) (not (kindIs "map" $v)) (not $isTables) }}
{{ include "athena-common.toml.key" $k }} = {{ include "athena-common.toml.value" $v }}
{{- end }}
{{- end }}
{{- range $k, $v := .map }}
{{- $sub := printf "%s.%s" $path (include "athena-common.toml.key" $k) }}
{{- if kindIs "map" $v }}

[{{ $sub }}]
{{- include "athena-common.toml.table" (dict "path" $sub "map" $v) }}
{{- else if and (kindIs "slice" $v) (gt (len $v) 0) (kindIs "map" (first $v)) }}
{{- range $item := $v }}

[[{{ $sub }}]]
{{- include "athena-common.toml.table" (dict "path" $sub "map" $item) }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}
