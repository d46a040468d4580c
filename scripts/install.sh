#!/usr/bin/env bash
# Installs (or upgrades) Athena on the Kubernetes cluster kubectl points at,
# with the Helm chart in deploy/k8s/charts/athena and one of its profiles.
#
#   scripts/install.sh                          # asks for the profile
#   scripts/install.sh --profile gpu --vendor amd
#   scripts/install.sh --profile baremetal --ha-url http://192.168.1.10:8123 \
#       --ha-token-file ~/.ha-token
#   scripts/install.sh --profile dev --dry-run  # print the manifests only
#
# Options:
#   --profile dev|gpu|baremetal|cloud   deploy/k8s/profiles/values-<profile>.yaml
#   --vendor nvidia|amd                 GPU vendor (profile gpu)
#   --namespace NAME                    default athena (created, restricted PSS)
#   --release NAME                      default athena
#   --ha-url URL                        Home Assistant, as the pods reach it
#   --ha-token-file FILE                a long-lived token, read from a file (never
#                                       an argument: it would land in shell history)
#   --values FILE                       more values (repeatable)
#   --dry-run                           render with helm template, change nothing
# Anything after -- goes to helm as is (e.g. -- --set stt.config.model=whisper-base).
#
# Needs kubectl and helm (v3.8 or later). docs/deploy/ has the details.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
chart="$root/deploy/k8s/charts/athena"
profile=""
vendor=""
namespace="athena"
release="athena"
ha_url=""
ha_token_file=""
dry_run=false
values=()
extra=()

die() { echo "install: $*" >&2; exit 1; }
say() { echo "install: $*" >&2; }

while (($#)); do
    case "$1" in
        --profile) profile="${2:?--profile needs a value}"; shift 2 ;;
        --vendor) vendor="${2:?--vendor needs a value}"; shift 2 ;;
        --namespace) namespace="${2:?--namespace needs a value}"; shift 2 ;;
        --release) release="${2:?--release needs a value}"; shift 2 ;;
        --ha-url) ha_url="${2:?--ha-url needs a value}"; shift 2 ;;
        --ha-token-file) ha_token_file="${2:?--ha-token-file needs a value}"; shift 2 ;;
        --values) values+=("${2:?--values needs a file}"); shift 2 ;;
        --dry-run) dry_run=true; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        --) shift; extra=("$@"); break ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

command -v helm >/dev/null || die "helm not found: https://helm.sh/docs/intro/install/"
if [[ -z "$profile" ]]; then
    if [[ -t 0 ]]; then
        read -r -p "Profile (dev/gpu/baremetal/cloud) [dev]: " profile
    fi
    profile="${profile:-dev}"
fi
profile_file="$root/deploy/k8s/profiles/values-$profile.yaml"
[[ -f "$profile_file" ]] || die "no profile $profile (deploy/k8s/profiles/values-$profile.yaml)"
[[ -z "$vendor" || "$vendor" == nvidia || "$vendor" == amd ]] || die "--vendor is nvidia or amd"
[[ -z "$ha_token_file" || -r "$ha_token_file" ]] || die "cannot read $ha_token_file"

args=(--namespace "$namespace" -f "$profile_file")
for file in "${values[@]}"; do args+=(-f "$file"); done
[[ -n "$vendor" ]] && args+=(--set "global.gpu.vendor=$vendor")
[[ -n "$ha_url" ]] && args+=(--set "global.homeAssistant.url=$ha_url")
if [[ -n "$ha_token_file" ]]; then
    args+=(--set global.homeAssistant.tokenSecret.name=home-assistant --set global.homeAssistant.tokenSecret.key=token)
fi
args+=("${extra[@]}")

# The bundled Redis, Qdrant and kube-prometheus-stack charts come from their
# repositories; the service charts are in the tree already.
say "fetching the chart's dependencies (helm dependency build)"
helm dependency build "$chart" >&2

if $dry_run; then
    helm template "$release" "$chart" "${args[@]}"
    exit 0
fi

command -v kubectl >/dev/null || die "kubectl not found"
kubectl version >/dev/null 2>&1 || die "no cluster: kubectl cannot reach the API server"

say "namespace $namespace (restricted Pod Security Standard)"
kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl label namespace "$namespace" --overwrite \
    pod-security.kubernetes.io/enforce=restricted \
    pod-security.kubernetes.io/warn=restricted >/dev/null

if [[ -n "$ha_token_file" ]]; then
    say "Secret home-assistant (token from $ha_token_file)"
    kubectl -n "$namespace" create secret generic home-assistant \
        --from-file=token="$ha_token_file" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
fi

if [[ "$profile" == gpu ]]; then
    resource="nvidia.com/gpu"
    [[ "$vendor" == amd ]] && resource="amd.com/gpu"
    gpus="$(kubectl get nodes -l athena.gpu=true -o jsonpath="{.items[*].status.allocatable['${resource//./\\.}']}" 2>/dev/null || true)"
    if [[ -z "${gpus// /}" ]]; then
        say "warning: no node labelled athena.gpu=true offers $resource; GPU pods will stay Pending"
        say "         (docs/deploy/GPU_SETUP.md: device plugin, then kubectl label node NODE athena.gpu=true)"
    else
        say "GPU nodes offer $resource: $gpus"
    fi
fi

say "helm upgrade --install $release ($profile)"
helm upgrade --install "$release" "$chart" "${args[@]}" --wait --timeout 20m
say "done: kubectl -n $namespace get pods -l app.kubernetes.io/instance=$release"
