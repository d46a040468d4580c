{{/* The ClusterIP Service: HTTP (API, gRPC, ops) and Wyoming, where spoken. */}}
{{- define "athena-common.service" -}}
{{- $root := .root -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "athena-common.fullname" $root }}
  labels:
    {{- include "athena-common.labels" $root | nindent 4 }}
  {{- with .v.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ .v.service.type }}
  selector:
    {{- include "athena-common.selectorLabels" $root | nindent 4 }}
  ports:
    - name: http
      port: {{ .entry.http }}
      targetPort: http
      protocol: TCP
    {{- with .entry.wyoming }}
    - name: wyoming
      port: {{ . }}
      targetPort: wyoming
      protocol: TCP
    {{- end }}
{{- end -}}

{{/*
The Wyoming port for clients outside the cluster: satellites on the LAN
(orchestrator), Home Assistant (stt, tts). NodePort (a fixed port on every
node) or LoadBalancer (a fixed address through MetalLB, or a cloud's).
*/}}
{{- define "athena-common.wyomingService" -}}
{{- $root := .root -}}
{{- $w := .v.wyoming.service -}}
{{- if and .entry.wyoming $w.enabled -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "athena-common.fullname" $root }}-wyoming
  labels:
    {{- include "athena-common.labels" $root | nindent 4 }}
    # Not the Service a ServiceMonitor scrapes.
    athena/exposure: wyoming
  {{- $annotations := deepCopy ($w.annotations | default dict) }}
  {{- if and (eq $w.type "LoadBalancer") $w.loadBalancerIP }}
  {{- $_ := set $annotations $w.loadBalancerIPAnnotation $w.loadBalancerIP }}
  {{- end }}
  {{- with $annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ $w.type }}
  externalTrafficPolicy: {{ $w.externalTrafficPolicy | default (ternary "Local" "Cluster" (eq $w.type "LoadBalancer")) }}
  selector:
    {{- include "athena-common.selectorLabels" $root | nindent 4 }}
  ports:
    - name: wyoming
      port: {{ .entry.wyoming }}
      targetPort: wyoming
      protocol: TCP
      {{- if and (eq $w.type "NodePort") $w.nodePort }}
      nodePort: {{ $w.nodePort }}
      {{- end }}
{{- end -}}
{{- end -}}

{{/* Ingress for the HTTP API, with TLS from cert-manager and long timeouts for streams. */}}
{{- define "athena-common.ingress" -}}
{{- $root := .root -}}
{{- $gi := $root.Values.global.ingress -}}
{{- if and $gi.enabled .v.ingress.enabled -}}
{{- $host := .v.ingress.host | default (printf "%s.%s" $root.Chart.Name $gi.domain) -}}
{{- $fullname := include "athena-common.fullname" $root -}}
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ $fullname }}
  labels:
    {{- include "athena-common.labels" $root | nindent 4 }}
  {{- $annotations := mustMergeOverwrite (deepCopy ($gi.annotations | default dict)) (deepCopy (.v.ingress.annotations | default dict)) }}
  {{- if and $gi.tls.enabled $gi.tls.clusterIssuer }}
  {{- $_ := set $annotations "cert-manager.io/cluster-issuer" $gi.tls.clusterIssuer }}
  {{- end }}
  {{- with $annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- with $gi.className }}
  ingressClassName: {{ . }}
  {{- end }}
  {{- if $gi.tls.enabled }}
  tls:
    - hosts: [{{ $host | quote }}]
      secretName: {{ $gi.tls.secretName | default (printf "%s-tls" $fullname) }}
  {{- end }}
  rules:
    - host: {{ $host | quote }}
      http:
        paths:
          {{- range .v.ingress.paths }}
          - path: {{ . }}
            pathType: Prefix
            backend:
              service:
                name: {{ $fullname }}
                port:
                  name: http
          {{- end }}
{{- end -}}
{{- end -}}

{{/* ServiceMonitor for the Prometheus Operator: /metrics on the HTTP port. */}}
{{- define "athena-common.serviceMonitor" -}}
{{- $root := .root -}}
{{- $sm := $root.Values.global.metrics.serviceMonitor -}}
{{- if $sm.enabled -}}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "athena-common.fullname" $root }}
  labels:
    {{- include "athena-common.labels" $root | nindent 4 }}
    {{- with $sm.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "athena-common.selectorLabels" $root | nindent 6 }}
    matchExpressions:
      - { key: athena/exposure, operator: DoesNotExist }
  endpoints:
    - port: http
      path: /metrics
      interval: {{ $sm.interval }}
      scrapeTimeout: {{ $sm.scrapeTimeout }}
{{- end -}}
{{- end -}}
