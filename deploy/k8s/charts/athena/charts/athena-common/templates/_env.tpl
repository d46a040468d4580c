{{/*
Environment variables: the config file, the GPU switch, and how this
service reaches the others and the data stores (dict "root" $ "v" $values
"entry" $entry "gpu" $gpu). Values set here override athena.toml.
*/}}
{{- define "athena-common.env" -}}
{{- $root := .root -}}
{{- $section := upper .entry.section -}}
{{- $global := $root.Values.global -}}
- name: ATHENA_CONFIG
  value: /etc/athena/config/athena.toml
{{- if .gpu.active }}
- name: ATHENA__{{ $section }}__GPU
  value: "true"
{{- end }}
{{- if .entry.role }}
# The id the orchestrator's routing policy asks for, whichever GGUF is loaded.
- name: ATHENA__{{ $section }}__MODEL_ID
  value: {{ $root.Chart.Name | quote }}
{{- end }}
{{- if eq $root.Chart.Name "orchestrator" }}
- name: ATHENA__ORCHESTRATOR__STT__URL
  value: {{ include "athena-common.url" (dict "root" $root "service" "stt") | quote }}
- name: ATHENA__ORCHESTRATOR__TTS__URL
  value: {{ include "athena-common.url" (dict "root" $root "service" "tts") | quote }}
- name: ATHENA__ORCHESTRATOR__HA_BRIDGE_URL
  value: {{ include "athena-common.url" (dict "root" $root "service" "ha-bridge") | quote }}
- name: ATHENA__ORCHESTRATOR__MODE_SERVICE_URL
  value: {{ include "athena-common.url" (dict "root" $root "service" "mode-service") | quote }}
- name: ATHENA__ORCHESTRATOR__RAG_API_URL
  value: {{ include "athena-common.url" (dict "root" $root "service" "rag-api") | quote }}
- name: ATHENA__ORCHESTRATOR__ROUTING_POLICY
  value: /etc/athena/files/routing.yaml
{{- include "athena-common.redisEnv" (dict "root" $root "name" "ATHENA__ORCHESTRATOR__MEMORY__REDIS_URL" "db" 0) }}
{{- end }}
{{- if eq $root.Chart.Name "mode-service" }}
{{- include "athena-common.redisEnv" (dict "root" $root "name" "ATHENA__MODE_SERVICE__STORE__REDIS_URL" "db" 1) }}
{{- end }}
{{- if eq $root.Chart.Name "rag-api" }}
{{- $q := $global.qdrant | default dict }}
{{- if or $q.enabled $q.url }}
- name: ATHENA__RAG_API__BACKEND
  value: qdrant
- name: ATHENA__RAG_API__QDRANT__URL
  value: {{ $q.url | default (printf "http://%s-qdrant:6334" $root.Release.Name) | quote }}
{{- with $q.apiKeySecret }}{{ if .name }}
- name: ATHENA__RAG_API__QDRANT__API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ .key | default "api-key" }}
{{- end }}{{ end }}
{{- end }}
{{- end }}
{{- if eq $root.Chart.Name "ha-bridge" }}
{{- $ha := $global.homeAssistant | default dict }}
{{- with $ha.url }}
- name: ATHENA__HA_BRIDGE__URL
  value: {{ . | quote }}
{{- end }}
{{- if and $ha.tokenSecret $ha.tokenSecret.name }}
- name: ATHENA__HA_BRIDGE__TOKEN_FILE
  value: /run/secrets/home-assistant/{{ $ha.tokenSecret.key | default "token" }}
{{- end }}
{{- end }}
{{- range $name, $value := .v.env }}
- name: {{ $name }}
  value: {{ toString $value | quote }}
{{- end }}
{{- with .v.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
A Redis URL in variable `name`, database `db` (dict "root" $ "name" ... "db" 0):
the bundled Redis (global.redis.enabled) or global.redis.address; the
password, when there is one, comes from its Secret into the URL through
Kubernetes' $(VAR) expansion, so it never appears in the manifest.
*/}}
{{- define "athena-common.redisEnv" -}}
{{- $root := .root -}}
{{- $r := $root.Values.global.redis | default dict -}}
{{- if or $r.enabled $r.address }}
{{- $address := $r.address | default (printf "%s-redis-master:6379" $root.Release.Name) }}
{{- $secret := $r.passwordSecret | default dict }}
{{- $secretName := $secret.name | default (ternary (printf "%s-redis" $root.Release.Name) "" (and $r.enabled (not $r.address))) }}
{{- if $secretName }}
- name: ATHENA_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secretName }}
      key: {{ $secret.key | default "redis-password" }}
- name: {{ .name }}
  value: {{ printf "redis://:$(ATHENA_REDIS_PASSWORD)@%s/%v" $address .db | quote }}
{{- else }}
- name: {{ .name }}
  value: {{ printf "redis://%s/%v" $address .db | quote }}
{{- end }}
{{- end }}
{{- end -}}
