{{/*
Helpers shared by every template. Per-service helpers take a context built by
a context (dict "root" $ "name" "<service>" "svc" <its values>).
*/}}

{{- define "flokraft.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}


{{/* Name of a component's objects, e.g. flokraft-query-api. */}}
{{- define "flokraft.name" -}}
{{- printf "%s-%s" (include "flokraft.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "flokraft.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: flokraft
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* Selector labels of a component; .name is the component (service) name. */}}
{{- define "flokraft.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "flokraft.labels" -}}
{{ include "flokraft.commonLabels" .root }}
{{ include "flokraft.selectorLabels" . }}
{{- end -}}

{{/* Matches every pod of the release (the default-deny policy). */}}
{{- define "flokraft.releaseSelector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "flokraft.image" -}}
{{- $root := .root -}}
{{- $repo := .svc.image.repository -}}
{{- /* A repository that already names a registry (skaffold passes full ones) is kept. */ -}}
{{- if and $root.Values.image.registry (not (contains "/" $repo)) }}{{ $repo = printf "%s/%s" (trimSuffix "/" $root.Values.image.registry) $repo }}{{ end -}}
{{- $tag := .svc.image.tag | default $root.Values.image.tag | default $root.Chart.AppVersion -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}

{{- define "flokraft.authIssuer" -}}
{{- if .Values.devauth.enabled -}}{{ .Values.devauth.issuer }}
{{- else -}}{{ .Values.auth.issuer | default (printf "https://securetoken.google.com/%s" .Values.gcp.projectId) }}
{{- end -}}
{{- end -}}

{{- define "flokraft.authJwksUrl" -}}
{{- if .Values.devauth.enabled -}}
{{- printf "http://%s-devauth:%d/.well-known/jwks.json" (include "flokraft.fullname" .) (int .Values.devauth.port) -}}
{{- else -}}{{ .Values.auth.jwksUrl }}
{{- end -}}
{{- end -}}

{{/*
Memory quantity -> MiB (integer). Only binary suffixes are accepted so the analyzer's
job cap can be compared with its pod limit without rounding surprises.
*/}}
{{- define "flokraft.toMi" -}}
{{- $q := toString . -}}
{{- if hasSuffix "Gi" $q -}}{{ mul (trimSuffix "Gi" $q | atoi) 1024 }}
{{- else if hasSuffix "Mi" $q -}}{{ trimSuffix "Mi" $q | atoi }}
{{- else -}}{{ fail (printf "memory quantity %q: use Mi or Gi" $q) }}
{{- end -}}
{{- end -}}

{{- define "flokraft.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurity.runAsUser }}
runAsGroup: {{ .Values.podSecurity.runAsGroup }}
fsGroup: {{ .Values.podSecurity.runAsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "flokraft.containerSecurityContext" -}}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: {{ .readOnly }}
runAsNonRoot: true
runAsUser: {{ .root.Values.podSecurity.runAsUser }}
runAsGroup: {{ .root.Values.podSecurity.runAsGroup }}
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
checkov skips that apply to every workload of the chart, each with its reason. Checkov
reads `checkov.io/skipN: CKV_ID=reason` annotations on the object it reports.
*/}}
{{- define "flokraft.checkovSkips" -}}
checkov.io/skip1: CKV_K8S_43=Images are referenced by tag; skaffold and the release pipeline deploy tag@digest, which cannot be known when the chart is written
{{- if ne .Values.image.pullPolicy "Always" }}
checkov.io/skip2: CKV_K8S_15=pullPolicy is lowered only in dev, where skaffold side-loads images into a local cluster without a registry
{{- end }}
{{- if not .Values.podSecurity.readOnlyRootFilesystem }}
checkov.io/skip3: CKV_K8S_22=Writable root filesystem only in dev, where skaffold file sync writes changed sources into the image
{{- end }}
{{- end -}}

{{/* DNS egress; NodeLocal DNSCache listens on a link-local address, so no peer is pinned. */}}
{{- define "flokraft.egressDns" -}}
- ports:
    - {protocol: UDP, port: 53}
    - {protocol: TCP, port: 53}
{{- end -}}

{{/*
Egress every service needs against real GCP: Google APIs over 443, and the GKE metadata
server for Workload Identity tokens (169.254.169.254:80; :988 on Dataplane V2).
*/}}
{{- define "flokraft.egressGoogle" -}}
- to:
    - ipBlock:
        cidr: {{ .Values.networkPolicy.googleApis.cidr }}
        {{- with .Values.networkPolicy.googleApis.except }}
        except: {{- toYaml . | nindent 10 }}
        {{- end }}
  ports:
    - {protocol: TCP, port: 443}
- to:
    - ipBlock: {cidr: 169.254.169.254/32}
    - ipBlock: {cidr: 169.254.169.252/32}
  ports:
    - {protocol: TCP, port: 80}
    - {protocol: TCP, port: 988}
{{- end -}}

{{/* Egress to the in-cluster emulators (dev). */}}
{{- define "flokraft.egressEmulators" -}}
{{- if .Values.emulators.enabled -}}
- to:
    - podSelector:
        matchLabels: {{- include "flokraft.selectorLabels" (dict "root" . "name" "emulators") | nindent 10 }}
  ports:
    - {protocol: TCP, port: {{ .Values.emulators.firestorePort }}}
    - {protocol: TCP, port: {{ .Values.emulators.pubsubPort }}}
{{- end }}
{{- end -}}
