{{/*
Helpers shared by every template. Per-service helpers take a context built by
a context (dict "root" $ "name" "<service>" "svc" <its values>).
*/}}

{{/* Prefix of every object name: fullnameOverride, else <release>-<nameOverride|chart>. */}}
{{- define "flokraft.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := .Values.nameOverride | default .Chart.Name -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
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
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* app.kubernetes.io/name: nameOverride or the chart's name. */}}
{{- define "flokraft.appName" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels of a component; .name is the component (service) name. */}}
{{- define "flokraft.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flokraft.appName" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "flokraft.labels" -}}
{{ include "flokraft.commonLabels" .root }}
{{ include "flokraft.selectorLabels" . }}
{{- end -}}

{{/* Matches every pod of the release (the default-deny policy). */}}
{{- define "flokraft.releaseSelector" -}}
app.kubernetes.io/name: {{ include "flokraft.appName" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "flokraft.image" -}}
{{- $root := .root -}}
{{- $repo := .svc.image.repository -}}
{{- /* A repository that already names a registry (skaffold passes full ones) is kept. */ -}}
{{- if and $root.Values.image.registry (not (contains "/" $repo)) }}{{ $repo = printf "%s/%s" (trimSuffix "/" $root.Values.image.registry) $repo }}{{ end -}}
{{- if .svc.image.digest -}}
{{- printf "%s@%s" $repo .svc.image.digest -}}
{{- else -}}
{{- $tag := .svc.image.tag | default $root.Values.image.tag | default $root.Chart.AppVersion -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}
{{- end -}}

{{/* imagePullSecrets of every pod (image.pullSecrets), or nothing. */}}
{{- define "flokraft.imagePullSecrets" -}}
{{- with .Values.image.pullSecrets }}
imagePullSecrets: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* A service's Kubernetes service account (bitnami's rule: created ones default to the
object name, existing ones to "default"). */}}
{{- define "flokraft.serviceAccountName" -}}
{{- if .root.Values.serviceAccounts.create -}}
{{- .svc.serviceAccountName | default (include "flokraft.name" .) -}}
{{- else -}}
{{- .svc.serviceAccountName | default "default" -}}
{{- end -}}
{{- end -}}

{{/*
A subscription of files/pubsub-topology.yaml by name, as YAML (use with fromYaml). Names,
not positions: reordering the file cannot hand the analyzer the dead-letter queue.
*/}}
{{- define "flokraft.subscription" -}}
{{- $topology := .root.Files.Get "files/pubsub-topology.yaml" | fromYaml -}}
{{- $found := dict -}}
{{- range $topology.subscriptions }}{{ if eq .name $.name }}{{ $found = . }}{{ end }}{{ end -}}
{{- if not $found }}{{ fail (printf "subscription %q is not in files/pubsub-topology.yaml" .name) }}{{ end -}}
{{- toYaml $found -}}
{{- end -}}

{{/*
The job subscription's settings, with MAX_ATTEMPTS derived. pubsub.jobSubscription names
it; empty: the topology's one subscription with a deadLetterPolicy, so a renamed
subscription needs no second edit anywhere.
*/}}
{{- define "flokraft.jobSubscription" -}}
{{- $name := .Values.pubsub.jobSubscription -}}
{{- if not $name -}}
{{- $topology := .Files.Get "files/pubsub-topology.yaml" | fromYaml -}}
{{- $candidates := list -}}
{{- range $topology.subscriptions }}{{ if .deadLetterPolicy }}{{ $candidates = append $candidates .name }}{{ end }}{{ end -}}
{{- if ne (len $candidates) 1 -}}
{{- fail (printf "files/pubsub-topology.yaml has %d subscriptions with a deadLetterPolicy (%s): set pubsub.jobSubscription" (len $candidates) (join ", " $candidates)) -}}
{{- end -}}
{{- $name = first $candidates -}}
{{- end -}}
{{- $sub := include "flokraft.subscription" (dict "root" . "name" $name) | fromYaml -}}
{{- if not $sub.deadLetterPolicy -}}
{{- fail (printf "subscription %q needs a deadLetterPolicy: MAX_ATTEMPTS is its maxDeliveryAttempts" $sub.name) -}}
{{- end -}}
{{- toYaml $sub -}}
{{- end -}}

{{/*
The dead-letter subscription's settings. pubsub.deadLetterSubscription names it; empty: the
topology's one subscription on the job subscription's deadLetterTopic.
*/}}
{{- define "flokraft.deadLetterSubscription" -}}
{{- $name := .Values.pubsub.deadLetterSubscription -}}
{{- if not $name -}}
{{- $jobs := include "flokraft.jobSubscription" . | fromYaml -}}
{{- $topology := .Files.Get "files/pubsub-topology.yaml" | fromYaml -}}
{{- $candidates := list -}}
{{- range $topology.subscriptions }}{{ if eq .topic $jobs.deadLetterPolicy.deadLetterTopic }}{{ $candidates = append $candidates .name }}{{ end }}{{ end -}}
{{- if ne (len $candidates) 1 -}}
{{- fail (printf "files/pubsub-topology.yaml has %d subscriptions on the dead-letter topic %q (%s): set pubsub.deadLetterSubscription" (len $candidates) $jobs.deadLetterPolicy.deadLetterTopic (join ", " $candidates)) -}}
{{- end -}}
{{- $name = first $candidates -}}
{{- end -}}
{{- include "flokraft.subscription" (dict "root" . "name" $name) -}}
{{- end -}}

{{/*
Scheduling knobs of a service's pods (bitnami's names). A topology spread constraint
without a labelSelector spreads this service's own pods.
*/}}
{{- define "flokraft.scheduling" -}}
{{- $svc := .svc -}}
{{- with $svc.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $svc.nodeSelector }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $svc.affinity }}
affinity: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $svc.tolerations }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $svc.topologySpreadConstraints }}
topologySpreadConstraints:
{{- range . }}
{{- $c := deepCopy . }}
{{- if not $c.labelSelector }}
{{- $_ := set $c "labelSelector" (dict "matchLabels" (include "flokraft.selectorLabels" $ | fromYaml)) }}
{{- end }}
  - {{ toYaml $c | nindent 4 | trim }}
{{- end }}
{{- end }}
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
Egress every service needs against real GCP: Google APIs over 443 (minus every
non-public range, networkPolicy.googleApis.except). With Workload Identity also the GKE
metadata server, which hands out the tokens: 169.254.169.254:80, and 169.254.169.252:988
where Dataplane V2 redirects it; nothing else of 169.254.0.0/16.
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
{{- if .Values.serviceAccounts.workloadIdentity }}
- to:
    - ipBlock: {cidr: 169.254.169.254/32}
  ports:
    - {protocol: TCP, port: 80}
- to:
    - ipBlock: {cidr: 169.254.169.252/32}
  ports:
    - {protocol: TCP, port: 988}
{{- end }}
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

{{/*
Settings of every api-role service. RATE_LIMIT_STORAGE_URI comes from a Secret when one is
named (a redis URI carries its password), else from rateLimit.storageUri.
*/}}
{{- define "flokraft.apiEnv" -}}
{{- $redis := .Values.rateLimit.redis -}}
- name: RATE_LIMIT_STORAGE_URI
{{- if $redis.existingSecret }}
  valueFrom:
    secretKeyRef:
      name: {{ $redis.existingSecret }}
      key: {{ $redis.key }}
{{- else }}
  value: {{ .Values.rateLimit.storageUri | quote }}
{{- end }}
- name: FORWARDED_ALLOW_IPS
  value: {{ .Values.http.forwardedAllowIps | quote }}
- name: FORWARDED_FOR_CLIENT_POSITION
  value: {{ .Values.http.forwardedForClientPosition | quote }}
- name: CORS_ALLOW_ORIGINS
  value: {{ join "," .Values.http.cors.allowOrigins | quote }}
- name: CORS_ALLOW_ORIGIN_REGEX
  value: {{ .Values.http.cors.allowOriginRegex | quote }}
{{- end -}}

{{- define "flokraft.pageTokenSecretName" -}}
{{- .Values.pageTokens.existingSecret | default (printf "%s-page-tokens" (include "flokraft.fullname" .)) -}}
{{- end -}}

{{/* CPU quantity -> millicores (integer): "1" -> 1000, "500m" -> 500, 1.5 -> 1500. */}}
{{- define "flokraft.toMilliCpu" -}}
{{- $q := toString . -}}
{{- if hasSuffix "m" $q -}}{{ trimSuffix "m" $q | atoi }}
{{- else -}}{{ mulf (float64 $q) 1000 | int }}
{{- end -}}
{{- end -}}

{{/* A worker's backlog target per replica: targetBacklogPerJob x maxConcurrentJobs. */}}
{{- define "flokraft.backlogPerReplica" -}}
{{- mulf .autoscaling.targetBacklogPerJob .maxConcurrentJobs -}}
{{- end -}}

{{/*
A worker's CPU target must be at least 100 x limits.cpu / requests.cpu: then even pods at
their CPU limit propose no more replicas than there are, and an empty queue never scales up.
*/}}
{{- define "flokraft.checkCpuGuard" -}}
{{- $r := .svc.resources -}}
{{- $limit := include "flokraft.toMilliCpu" $r.limits.cpu | atoi -}}
{{- $request := include "flokraft.toMilliCpu" $r.requests.cpu | atoi -}}
{{- $floor := div (add (mul 100 $limit) (sub $request 1)) $request -}}
{{- if lt (int .svc.autoscaling.targetCPUUtilizationPercentage) (int $floor) -}}
{{- fail (printf "services.%s.autoscaling.targetCPUUtilizationPercentage (%d) must be at least 100 x limits.cpu / requests.cpu (%d): below that, busy pods alone ask for more replicas while the queue is empty" .name (int .svc.autoscaling.targetCPUUtilizationPercentage) (int $floor)) -}}
{{- end -}}
{{- end -}}

{{/*
Who may scrape /metrics: the scraper observability.scrape names, plus
networkPolicy.metricsFrom. gmp: GKE managed Prometheus's collectors (namespace gmp-system);
prometheus-operator: the Prometheus pods (observability.prometheusOperator.podLabels) in
their namespace (kube-prometheus-stack's); annotations and none: only the listed peers.
*/}}
{{- define "flokraft.metricsFrom" -}}
{{- $obs := .Values.observability -}}
{{- $peers := list -}}
{{- if eq $obs.scrape "gmp" -}}
{{- $peers = append $peers (dict "namespaceSelector" (dict "matchLabels" (dict "kubernetes.io/metadata.name" "gmp-system"))) -}}
{{- else if eq $obs.scrape "prometheus-operator" -}}
{{- $op := $obs.prometheusOperator -}}
{{- $peers = append $peers (dict "namespaceSelector" (dict "matchLabels" (dict "kubernetes.io/metadata.name" $op.namespace)) "podSelector" (dict "matchLabels" $op.podLabels)) -}}
{{- end -}}
{{- $peers = concat $peers .Values.networkPolicy.metricsFrom -}}
{{- with $peers }}{{ toYaml . }}{{ end -}}
{{- end -}}
