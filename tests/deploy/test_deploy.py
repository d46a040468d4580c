"""Tests over the deployment files and what they render to.

Run by scripts/validate-deploy.sh, which renders the Helm chart and the
Kustomize overlays first and passes where they are:

  ATHENA_DEPLOY_RENDERED  a folder of <case>.yaml (helm template, kustomize)
  ATHENA_DEPLOY_COMPOSE   a folder with compose.yaml and compose-gpu.yaml
                          (docker-compose config output)
  ATHENA_CARGO_METADATA   `cargo metadata --no-deps --format-version 1` output

Facts about the services come from the code itself (config defaults, cargo
features, metric names, [[bin]] targets), so a change there that the
deployment files miss fails here.
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
import re
import tomllib
from urllib.parse import urlparse

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
CHART = K8S / "charts" / "athena"
RENDERED = pathlib.Path(os.environ.get("ATHENA_DEPLOY_RENDERED", "/nonexistent"))
COMPOSE_OUT = pathlib.Path(os.environ.get("ATHENA_DEPLOY_COMPOSE", "/nonexistent"))
METADATA = pathlib.Path(os.environ.get("ATHENA_CARGO_METADATA", "/nonexistent"))

SERVICES = [
    "orchestrator",
    "stt",
    "tts",
    "router-small-llm",
    "router-large-llm",
    "rag-api",
    "ha-bridge",
    "mode-service",
]

# What each render case (scripts/validate-deploy.sh) must contain.
#   gpu: service -> the extended resource it gets (and no other service gets one)
#   wyoming: the orchestrator's outside Service: NodePort port, or LoadBalancer IP
#   redis, qdrant: the bundled data stores are wired in
#   accel: service -> image flavour for GPU services (the rest: cpu)
EXPECT: dict[str, dict] = {
    "default": {"gpu": {}, "wyoming": ("NodePort", 31070)},
    "dev": {"gpu": {}, "wyoming": ("NodePort", 31070)},
    "gpu-nvidia": {
        "gpu": {"stt": "nvidia.com/gpu", "router-large-llm": "nvidia.com/gpu"},
        "wyoming": ("NodePort", 31070),
        "redis": True,
    },
    "gpu-amd": {
        # Only stt has a ROCm back-end; the large LLM falls back to its CPU image.
        "gpu": {"stt": "amd.com/gpu"},
        "wyoming": ("NodePort", 31070),
        "redis": True,
    },
    "gpu-mig": {
        "gpu": {"stt": "nvidia.com/mig-1g.10gb", "router-large-llm": "nvidia.com/mig-1g.10gb"},
        "wyoming": ("NodePort", 31070),
        "redis": True,
    },
    "baremetal": {
        "gpu": {},
        "wyoming": ("LoadBalancer", "192.168.60.50"),
        "redis": True,
        "qdrant": True,
        "ingress": True,
        "storageClass": "longhorn",
    },
    "baremetal-amd": {
        "gpu": {"stt": "amd.com/gpu"},
        "wyoming": ("LoadBalancer", "192.168.60.50"),
        "redis": True,
        "qdrant": True,
        "ingress": True,
        "supplementalGroups": [44, 110],
    },
    "cloud": {
        "gpu": {},
        "wyoming": ("LoadBalancer", None),
        "redis": True,
        "qdrant": True,
        "ingress": True,
        "serviceMonitors": True,
        "hpa": ["orchestrator", "stt", "tts", "router-small-llm"],
    },
    "everything": {
        "gpu": {"stt": "nvidia.com/gpu", "router-large-llm": "nvidia.com/gpu"},
        "wyoming": ("LoadBalancer", None),
        "redis": True,
        "qdrant": True,
        "ingress": True,
        "serviceMonitors": True,
        "keda": ["stt", "tts", "router-large-llm"],
        "hpa": ["orchestrator", "router-small-llm"],
        "runtimeClassName": "nvidia",
        "monitoringStack": True,
    },
    # Kustomize overlays (the chart rendered with base/values.yaml, patched).
    "kustomize-dev": {"gpu": {}, "wyoming": ("NodePort", 31070), "namespace": "athena-dev"},
    "kustomize-gpu": {"gpu": {"router-large-llm": "nvidia.com/gpu"}, "wyoming": ("NodePort", 31070)},
    "kustomize-production": {"gpu": {}, "wyoming": ("NodePort", 31070), "minAvailable": ["orchestrator", "stt", "tts"]},
}

GPU_RESOURCE = re.compile(r"(^|/)(gpu|mig-.*)$")


# --- Facts from the code ---------------------------------------------------------


@functools.cache
def catalog() -> dict:
    """athena-common's table of services (ports, sections, GPU vendors, calls)."""
    text = (CHART / "charts/athena-common/templates/_catalog.tpl").read_text()
    body = text.split('{{- define "athena-common.catalog" -}}', 1)[1].split("{{- end -}}", 1)[0]
    return yaml.safe_load(body)


@functools.cache
def config_fields() -> set[str]:
    """Every field name of the services' config structs (serde names)."""
    files = list(ROOT.glob("services/*/src/**/*.rs")) + list(ROOT.glob("crates/*/src/**/*.rs"))
    fields: set[str] = set()
    for f in files:
        for m in re.finditer(r"^\s*pub\s+(?:r#)?([a-z_][a-z0-9_]*)\s*:", f.read_text(), re.M):
            fields.add(m.group(1))
    return fields


SECTIONS = {e["section"] for e in yaml.safe_load(
    (CHART / "charts/athena-common/templates/_catalog.tpl").read_text()
    .split('{{- define "athena-common.catalog" -}}', 1)[1].split("{{- end -}}", 1)[0]
).values()} | {"log", "shutdown"}


def check_config_keys(table: dict, where: str, path: str = "") -> None:
    for key, value in table.items():
        assert key in config_fields(), f"{where}: {path}{key} is not a config key any service reads"
        if isinstance(value, dict):
            check_config_keys(value, where, f"{path}{key}.")
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for item in value:
                check_config_keys(item, where, f"{path}{key}[].")


def check_env_name(name: str, where: str) -> None:
    """ATHENA__SECTION__KEY__...: a section and keys the services know."""
    if not name.startswith("ATHENA__"):
        return
    parts = name[len("ATHENA__"):].lower().split("__")
    assert parts[0] in SECTIONS, f"{where}: {name}: no section {parts[0]}"
    for key in parts[1:]:
        assert key in config_fields(), f"{where}: {name}: {key} is not a config key"


@functools.cache
def metric_names() -> set[str]:
    names: set[str] = set()
    for f in list(ROOT.glob("services/*/src/**/*.rs")) + list(ROOT.glob("crates/*/src/**/*.rs")):
        for m in re.finditer(r'(?:counter|gauge|histogram)!\(\s*"([a-z0-9_]+)"', f.read_text()):
            names.add(m.group(1))
    return names


@functools.cache
def cargo_metadata() -> dict:
    if not METADATA.exists():
        pytest.skip("ATHENA_CARGO_METADATA not set (run scripts/validate-deploy.sh)")
    return json.loads(METADATA.read_text())


def default_port(section: str) -> int:
    """The HTTP port a service's config defaults to, from its config.rs."""
    service_dir = {
        "orchestrator": "orchestrator", "stt": "stt", "tts": "tts", "rag_api": "rag-api",
        "ha_bridge": "ha-bridge", "mode_service": "mode-service",
    }[section]
    text = (ROOT / f"services/{service_dir}/src/config.rs").read_text()
    m = re.search(r"http: SocketAddr::from\(\(\[0, 0, 0, 0\], (\d+)\)\)", text)
    assert m, f"no default http port in services/{service_dir}/src/config.rs"
    return int(m.group(1))


# --- Rendered manifests ------------------------------------------------------------


def cases() -> list[str]:
    if not RENDERED.is_dir():
        return []
    return sorted(p.stem for p in RENDERED.glob("*.yaml"))


@functools.cache
def load(case: str) -> list[dict]:
    docs = [d for d in yaml.safe_load_all((RENDERED / f"{case}.yaml").read_text()) if d]
    assert docs, f"{case}: nothing rendered"
    return docs


def objects(case: str, kind: str) -> list[dict]:
    return [d for d in load(case) if d["kind"] == kind]


def service_of(obj: dict) -> str:
    return obj["metadata"]["labels"]["app.kubernetes.io/name"]


def deployments(case: str) -> dict[str, dict]:
    return {service_of(d): d for d in objects(case, "Deployment")}


def selects(selector: dict, labels: dict) -> bool:
    """A LabelSelector (matchLabels, matchExpressions) against labels."""
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        present = e["key"] in labels
        value = labels.get(e["key"])
        if e["operator"] == "In" and not (present and value in e["values"]):
            return False
        if e["operator"] == "NotIn" and present and value in e["values"]:
            return False
        if e["operator"] == "Exists" and not present:
            return False
        if e["operator"] == "DoesNotExist" and present:
            return False
    return True


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def test_every_case_has_expectations():
    assert cases(), "no rendered manifests: run scripts/validate-deploy.sh"
    assert set(cases()) == set(EXPECT), "render cases and EXPECT differ"


@pytest.mark.parametrize("case", cases())
def test_every_service_is_deployed(case):
    assert set(deployments(case)) == set(SERVICES)


@pytest.mark.parametrize("case", cases())
def test_pods_have_probes_on_the_real_health_endpoints(case):
    for name, d in deployments(case).items():
        c = d["spec"]["template"]["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports["http"] == catalog()[name]["http"], f"{case}/{name}: http port"
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}, f"{case}/{name}"
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}, f"{case}/{name}"
        assert c["startupProbe"]["httpGet"]["path"] == "/healthz", f"{case}/{name}"


@pytest.mark.parametrize("case", cases())
def test_pods_have_requests_and_limits(case):
    for name, d in deployments(case).items():
        r = d["spec"]["template"]["spec"]["containers"][0]["resources"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(r.get(kind, {})), f"{case}/{name}: {kind} {r}"


@pytest.mark.parametrize("case", cases())
def test_pods_meet_the_restricted_pod_security_standard(case):
    allowed_volumes = {"configMap", "emptyDir", "secret", "persistentVolumeClaim", "projected", "downwardAPI", "csi", "ephemeral"}
    for name, d in deployments(case).items():
        spec = d["spec"]["template"]["spec"]
        where = f"{case}/{name}"
        for host in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(host), f"{where}: {host}"
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] != 0, where
        assert psc["seccompProfile"]["type"] == "RuntimeDefault", where
        for v in spec["volumes"]:
            assert set(v) - {"name"} <= allowed_volumes, f"{where}: volume {v}"
        for c in spec["containers"] + spec.get("initContainers", []):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["runAsNonRoot"] is True, where
            assert not sc.get("privileged"), where
            assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add"), where
            assert not any(p.get("hostPort") for p in c.get("ports", [])), where
            mounts = {m["mountPath"] for m in c["volumeMounts"]}
            assert "/tmp" in mounts, f"{where}: a read-only root needs a writable /tmp"


@pytest.mark.parametrize("case", cases())
def test_gpus_only_where_the_profile_asks_with_the_vendors_resource(case):
    expected = EXPECT[case]["gpu"]
    for name, d in deployments(case).items():
        spec = d["spec"]["template"]["spec"]
        c = spec["containers"][0]
        where = f"{case}/{name}"
        gpu = {k: v for k, v in c["resources"].get("limits", {}).items() if GPU_RESOURCE.search(k)}
        gpu_requests = {k for k in c["resources"].get("requests", {}) if GPU_RESOURCE.search(k)}
        tag = c["image"].rsplit(":", 1)[1]
        gpu_env = {k: e.get("value") for k, e in env_of(c).items() if k.endswith("__GPU")}
        tolerations = [t for t in spec.get("tolerations", []) if t.get("key") == "athena.gpu"]
        if name in expected:
            assert gpu == {expected[name]: 1}, f"{where}: {gpu}"
            assert spec.get("nodeSelector", {}).get("athena.gpu") == "true", where
            assert tolerations, where
            vendor = "amd" if expected[name].startswith("amd.com/") else "nvidia"
            assert vendor in catalog()[name]["gpuVendors"], f"{where}: no {vendor} back-end"
            assert tag.endswith("-rocm" if vendor == "amd" else "-cuda"), f"{where}: {tag}"
            assert gpu_env == {f"ATHENA__{catalog()[name]['section'].upper()}__GPU": "true"}, where
            assert d["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0, f"{where}: no spare GPU to surge"
        else:
            assert not gpu and not gpu_requests, f"{where}: unexpected GPU {gpu}"
            assert "athena.gpu" not in spec.get("nodeSelector", {}), where
            assert not tolerations, f"{where}: GPU toleration on a CPU pod"
            assert tag.endswith("-cpu"), f"{where}: {tag}"
            assert not gpu_env, where
        groups = spec["securityContext"].get("supplementalGroups")
        if name in expected and "supplementalGroups" in EXPECT[case]:
            assert groups == EXPECT[case]["supplementalGroups"], where
        else:
            assert not groups, where
        runtime = spec.get("runtimeClassName")
        if name in expected and "runtimeClassName" in EXPECT[case]:
            assert runtime == EXPECT[case]["runtimeClassName"], where
        else:
            assert runtime is None, where


@pytest.mark.parametrize("case", cases())
def test_networkpolicies_deny_by_default_and_cover_every_workload(case):
    policies = objects(case, "NetworkPolicy")
    deny = [p for p in policies if p["spec"]["podSelector"] == {} and "ingress" not in p["spec"] and "egress" not in p["spec"]]
    assert deny and set(deny[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}, f"{case}: no default deny"
    dns = [p for p in policies if p["spec"]["podSelector"] == {} and p["spec"].get("egress")]
    assert dns and any(port["port"] == 53 for rule in dns[0]["spec"]["egress"] for port in rule["ports"]), f"{case}: DNS"
    workloads = objects(case, "Deployment") + objects(case, "StatefulSet")
    for w in workloads:
        labels = w["spec"]["template"]["metadata"]["labels"]
        own = [p for p in policies if p["spec"]["podSelector"] and selects(p["spec"]["podSelector"], labels)]
        assert own, f"{case}: no NetworkPolicy for {w['metadata']['name']}"
        assert {"Ingress", "Egress"} <= {t for p in own for t in p["spec"]["policyTypes"]}, f"{case}: {w['metadata']['name']}"


@pytest.mark.parametrize("case", cases())
def test_no_rule_opens_a_pod_to_everyone(case):
    """An empty `from`/`to` list (or a rule without one) allows every peer:
    only the bundled monitoring stack's policy may do that."""
    for p in objects(case, "NetworkPolicy"):
        if p["metadata"]["name"].endswith("-monitoring-stack"):
            continue
        for direction, key in (("ingress", "from"), ("egress", "to")):
            for rule in p["spec"].get(direction) or []:
                assert rule.get(key), f"{case}: {p['metadata']['name']} {direction} rule open to all: {rule}"
                # Only satellites may come from anywhere (to the orchestrator's Wyoming port).
                if direction == "ingress" and not p["metadata"]["name"].endswith("-orchestrator"):
                    cidrs = [peer.get("ipBlock", {}).get("cidr") for peer in rule[key]]
                    assert "0.0.0.0/0" not in cidrs, f"{case}: {p['metadata']['name']} open to any address"


def peers_allow(rules: list[dict], direction: str, labels: dict, port: int) -> bool:
    for rule in rules or []:
        ports = {p["port"] for p in rule.get("ports", [])}
        if ports and port not in ports:
            continue
        for peer in rule.get(direction, []):
            if "podSelector" in peer and "namespaceSelector" not in peer and selects(peer["podSelector"], labels):
                return True
    return False


@pytest.mark.parametrize("case", cases())
def test_networkpolicies_allow_each_call_at_both_ends(case):
    deps = deployments(case)
    policies = objects(case, "NetworkPolicy")
    for caller, entry in catalog().items():
        caller_labels = deps[caller]["spec"]["template"]["metadata"]["labels"]
        caller_policy = next(p for p in policies if p["spec"]["podSelector"] and selects(p["spec"]["podSelector"], caller_labels))
        for callee in entry["calls"]:
            callee_labels = deps[callee]["spec"]["template"]["metadata"]["labels"]
            port = catalog()[callee]["http"]
            callee_policy = next(p for p in policies if p["spec"]["podSelector"] and selects(p["spec"]["podSelector"], callee_labels))
            assert peers_allow(caller_policy["spec"].get("egress"), "to", callee_labels, port), f"{case}: {caller} may not call {callee}:{port}"
            assert peers_allow(callee_policy["spec"].get("ingress"), "from", caller_labels, port), f"{case}: {callee} refuses {caller} on {port}"
    # The bundled data stores: reachable by exactly their users.
    store_users = {"redis": ("orchestrator", "mode-service", 6379), "qdrant": ("rag-api", None, 6334)}
    for store, (a, b, port) in store_users.items():
        store_labels = {"app.kubernetes.io/name": store, "app.kubernetes.io/instance": "athena"}
        store_policies = [p for p in policies if p["spec"]["podSelector"] and selects(p["spec"]["podSelector"], store_labels)]
        if EXPECT[case].get(store):
            assert store_policies, f"{case}: no NetworkPolicy for the bundled {store}"
            for user in filter(None, (a, b)):
                labels = deps[user]["spec"]["template"]["metadata"]["labels"]
                assert peers_allow(store_policies[0]["spec"]["ingress"], "from", labels, port), f"{case}: {store} refuses {user}"
                user_policy = next(p for p in policies if p["spec"]["podSelector"] and selects(p["spec"]["podSelector"], labels))
                assert peers_allow(user_policy["spec"]["egress"], "to", store_labels, port), f"{case}: {user} may not reach {store}"
        else:
            assert not store_policies, f"{case}: policy for a {store} that is not installed"


@pytest.mark.parametrize("case", cases())
def test_home_assistant_egress_only_from_ha_bridge(case):
    for p in objects(case, "NetworkPolicy"):
        for rule in p["spec"].get("egress") or []:
            if any(port["port"] == 8123 for port in rule.get("ports", [])):
                assert p["metadata"]["name"].endswith("ha-bridge"), f"{case}: {p['metadata']['name']} reaches Home Assistant"


@pytest.mark.parametrize("case", cases())
def test_ha_bridge_may_reach_home_assistant_where_its_url_says(case):
    ha = deployments(case)["ha-bridge"]
    url = env_of(ha["spec"]["template"]["spec"]["containers"][0]).get("ATHENA__HA_BRIDGE__URL")
    if not url:
        return  # no Home Assistant configured: the chart's notes say so
    u = urlparse(url["value"])
    port = u.port or {"http": 80, "https": 443}[u.scheme]
    policy = next(p for p in objects(case, "NetworkPolicy") if p["metadata"]["name"] == ha["metadata"]["name"])
    ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}
    assert port in ports, f"{case}: ha-bridge may not reach {url['value']}"


@pytest.mark.parametrize("case", cases())
def test_orchestrator_exposes_wyoming_10700(case):
    services = objects(case, "Service")
    main = next(s for s in services if s["metadata"]["name"].endswith("-orchestrator"))
    ports = {p["name"]: p["port"] for p in main["spec"]["ports"]}
    assert ports == {"http": 8700, "wyoming": 10700}, f"{case}: {ports}"
    outside = next(s for s in services if s["metadata"]["name"].endswith("-orchestrator-wyoming"))
    (port,) = outside["spec"]["ports"]
    assert port["port"] == 10700 and port["targetPort"] == "wyoming", case
    kind, where = EXPECT[case]["wyoming"]
    assert outside["spec"]["type"] == kind, case
    if kind == "NodePort":
        assert port["nodePort"] == where, case
    elif where:
        assert outside["metadata"]["annotations"]["metallb.universe.tf/loadBalancerIPs"] == where, case
    # A LoadBalancer keeps the satellites' addresses; a NodePort answers on every node.
    assert outside["spec"]["externalTrafficPolicy"] == ("Local" if kind == "LoadBalancer" else "Cluster"), case


@pytest.mark.parametrize("case", cases())
def test_services_select_their_pods_and_name_real_ports(case):
    deps = objects(case, "Deployment")
    for s in objects(case, "Service"):
        targets = [d for d in deps if selects({"matchLabels": s["spec"]["selector"]}, d["spec"]["template"]["metadata"]["labels"])]
        assert len(targets) == 1, f"{case}: Service {s['metadata']['name']} selects {len(targets)} Deployments"
        ports = {p["name"] for p in targets[0]["spec"]["template"]["spec"]["containers"][0]["ports"]}
        for p in s["spec"]["ports"]:
            assert p["targetPort"] in ports, f"{case}: {s['metadata']['name']} targets {p['targetPort']}"


@pytest.mark.parametrize("case", cases())
def test_config_maps_are_valid_and_rolled_on_change(case):
    config_maps = {c["metadata"]["name"]: c for c in objects(case, "ConfigMap")}
    for name, d in deployments(case).items():
        full = d["metadata"]["name"]
        toml = config_maps[f"{full}-config"]["data"]["athena.toml"]
        parsed = tomllib.loads(toml)
        section = catalog()[name]["section"]
        assert set(parsed) <= {section, "log"}, f"{case}/{name}: sections {set(parsed)}"
        for table in parsed.values():
            check_config_keys(table, f"{case}/{name}")
        annotation = d["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        assert re.fullmatch(r"[0-9a-f]{64}", annotation), f"{case}/{name}"
        c = d["spec"]["template"]["spec"]["containers"][0]
        for env in c["env"]:
            check_env_name(env["name"], f"{case}/{name}")
        assert env_of(c)["ATHENA_CONFIG"]["value"] == "/etc/athena/config/athena.toml"
    # Different configs, different checksums.
    sums = [d["spec"]["template"]["metadata"]["annotations"]["checksum/config"] for d in deployments(case).values()]
    assert len(set(sums)) == len(sums), f"{case}: checksums collide"


@pytest.mark.parametrize("case", cases())
def test_the_orchestrator_reaches_every_backend(case):
    services = {s["metadata"]["name"]: {p["port"] for p in s["spec"]["ports"]} for s in objects(case, "Service")}
    orchestrator = deployments(case)["orchestrator"]
    env = env_of(orchestrator["spec"]["template"]["spec"]["containers"][0])
    for var in ("STT__URL", "TTS__URL", "HA_BRIDGE_URL", "MODE_SERVICE_URL", "RAG_API_URL"):
        url = urlparse(env[f"ATHENA__ORCHESTRATOR__{var}"]["value"])
        assert url.port in services.get(url.hostname, set()), f"{case}: {var} = {url.geturl()}"
    # The routing policy names both LLM routers by Service and by model id.
    files = next(c for c in objects(case, "ConfigMap") if c["metadata"]["name"].endswith("-orchestrator-files"))
    policy = yaml.safe_load(files["data"]["routing.yaml"])
    mount = env["ATHENA__ORCHESTRATOR__ROUTING_POLICY"]["value"]
    assert mount == "/etc/athena/files/routing.yaml"
    deps = deployments(case)
    for endpoint, service in (("small", "router-small-llm"), ("large", "router-large-llm")):
        url = urlparse(policy["endpoints"][endpoint]["url"])
        assert url.port in services.get(url.hostname, set()) and url.path == "/v1", f"{case}: {endpoint}"
        llm_env = env_of(deps[service]["spec"]["template"]["spec"]["containers"][0])
        model_id = llm_env[f"ATHENA__{catalog()[service]['section'].upper()}__MODEL_ID"]["value"]
        assert policy["endpoints"][endpoint]["model"] == model_id, f"{case}: {endpoint} model id"
    assert routing_keys_known(policy), case
    # The policy is a mounted directory (no subPath), so edits reach the pod and are reloaded.
    mounts = orchestrator["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    files_mount = next(m for m in mounts if m["mountPath"] == "/etc/athena/files")
    assert "subPath" not in files_mount


def routing_keys_known(policy: dict) -> bool:
    """Every key of a routing policy file is one of the built-in policy's."""
    source = (ROOT / "services/orchestrator/src/routing.rs").read_text()
    default = yaml.safe_load(source.split('pub const DEFAULT_YAML: &str = r#"', 1)[1].split('"#;', 1)[0])

    def known(mine, theirs, path=""):
        if not isinstance(mine, dict):
            return True
        for k, v in mine.items():
            assert isinstance(theirs, dict) and k in theirs, f"routing policy: unknown key {path}{k}"
            known(v, theirs[k], f"{path}{k}.")
        return True

    return known(policy, default)


@pytest.mark.parametrize("case", cases())
def test_data_stores_are_wired_with_secrets_not_values(case):
    deps = deployments(case)
    for name, var in (("orchestrator", "ATHENA__ORCHESTRATOR__MEMORY__REDIS_URL"), ("mode-service", "ATHENA__MODE_SERVICE__STORE__REDIS_URL")):
        env = env_of(deps[name]["spec"]["template"]["spec"]["containers"][0])
        if EXPECT[case].get("redis"):
            assert "$(ATHENA_REDIS_PASSWORD)@athena-redis-master:6379" in env[var]["value"], f"{case}/{name}"
            ref = env["ATHENA_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]
            assert ref == {"name": "athena-redis", "key": "redis-password"}, case
            names = [e["name"] for e in deps[name]["spec"]["template"]["spec"]["containers"][0]["env"]]
            assert names.index("ATHENA_REDIS_PASSWORD") < names.index(var), f"{case}: $(VAR) needs the variable first"
        else:
            assert var not in env, f"{case}/{name}"
    rag = env_of(deps["rag-api"]["spec"]["template"]["spec"]["containers"][0])
    if EXPECT[case].get("qdrant"):
        assert rag["ATHENA__RAG_API__BACKEND"]["value"] == "qdrant"
        assert rag["ATHENA__RAG_API__QDRANT__URL"]["value"] == "http://athena-qdrant:6334"
    else:
        assert "ATHENA__RAG_API__BACKEND" not in rag
    for d in deps.values():
        for e in d["spec"]["template"]["spec"]["containers"][0]["env"]:
            if re.search(r"TOKEN|PASSWORD|API_KEY|SECRET", e["name"]) and not e["name"].endswith("_FILE"):
                assert "valueFrom" in e, f"{case}: {e['name']} as a plain value"
    for s in objects(case, "Secret"):
        assert not s.get("data") and not s.get("stringData"), f"{case}: a Secret with values: {s['metadata']['name']}"


@pytest.mark.parametrize("case", cases())
def test_service_accounts_and_rbac(case):
    accounts = {a["metadata"]["name"]: a for a in objects(case, "ServiceAccount")}
    for name, d in deployments(case).items():
        spec = d["spec"]["template"]["spec"]
        assert spec["serviceAccountName"] in accounts, f"{case}/{name}"
        assert spec["automountServiceAccountToken"] is (name == "orchestrator"), f"{case}/{name}: API token"
    roles = objects(case, "Role") + objects(case, "ClusterRole")
    assert [service_of(r) for r in roles] == ["orchestrator"], f"{case}: roles {roles}"
    (rule,) = roles[0]["rules"]
    assert rule["resources"] == ["configmaps"] and set(rule["verbs"]) <= {"get", "list", "watch"}, case
    assert rule["resourceNames"] == [f"{deployments(case)['orchestrator']['metadata']['name']}-files"], case
    (binding,) = objects(case, "RoleBinding")
    assert binding["subjects"][0]["name"] == deployments(case)["orchestrator"]["spec"]["template"]["spec"]["serviceAccountName"]
    assert not objects(case, "ClusterRoleBinding"), case


@pytest.mark.parametrize("case", cases())
def test_disruption_budgets_and_autoscaling(case):
    deps = objects(case, "Deployment")
    for pdb in objects(case, "PodDisruptionBudget"):
        spec = pdb["spec"]
        assert ("minAvailable" in spec) != ("maxUnavailable" in spec), f"{case}: {pdb['metadata']['name']}"
        assert [d for d in deps if selects(spec["selector"], d["spec"]["template"]["metadata"]["labels"])], case
    assert len(objects(case, "PodDisruptionBudget")) == len(SERVICES), case
    for name in EXPECT[case].get("minAvailable", []):
        pdb = next(p for p in objects(case, "PodDisruptionBudget") if service_of(p) == name)
        assert pdb["spec"] == {**pdb["spec"], "minAvailable": 1}, case
    names = {d["metadata"]["name"]: d for d in deps}
    hpas = {h["spec"]["scaleTargetRef"]["name"] for h in objects(case, "HorizontalPodAutoscaler")}
    scaled = {s["spec"]["scaleTargetRef"]["name"] for s in objects(case, "ScaledObject")}
    assert not hpas & scaled, f"{case}: HPA and KEDA on the same Deployment"
    assert hpas | scaled <= set(names), case
    for target in hpas | scaled:
        assert "replicas" not in names[target]["spec"], f"{case}: {target} has replicas and an autoscaler"
    assert sorted(service_of(names[t]) for t in hpas) == sorted(EXPECT[case].get("hpa", [])), case
    assert sorted(service_of(names[t]) for t in scaled) == sorted(EXPECT[case].get("keda", [])), case
    for s in objects(case, "ScaledObject"):
        (trigger,) = s["spec"]["triggers"]
        query = trigger["metadata"]["query"]
        used = set(re.findall(r"([a-z_]+)(?:\{|\[)", query)) - {"sum", "rate"}
        assert used and used <= metric_names(), f"{case}: {query}"
        assert f'service="{s["spec"]["scaleTargetRef"]["name"]}"' in query, case


@pytest.mark.parametrize("case", cases())
def test_service_monitors_scrape_metrics(case):
    monitors = objects(case, "ServiceMonitor")
    if not EXPECT[case].get("serviceMonitors"):
        assert not monitors, case
        return
    assert len(monitors) == len(SERVICES), case
    for m in monitors:
        (endpoint,) = m["spec"]["endpoints"]
        assert endpoint["path"] == "/metrics" and endpoint["port"] == "http", case
        services = [s for s in objects(case, "Service") if selects(m["spec"]["selector"], s["metadata"]["labels"])]
        assert services and all("http" in {p["name"] for p in s["spec"]["ports"]} for s in services), case


@pytest.mark.parametrize("case", cases())
def test_ingress_has_tls_and_stream_timeouts(case):
    ingresses = objects(case, "Ingress")
    if not EXPECT[case].get("ingress"):
        assert not ingresses, case
        return
    assert ingresses, case
    for i in ingresses:
        annotations = i["metadata"]["annotations"]
        assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 600, case
        assert "cert-manager.io/cluster-issuer" in annotations, case
        hosts = {r["host"] for r in i["spec"]["rules"]}
        assert hosts <= {h for t in i["spec"]["tls"] for h in t["hosts"]}, case
        assert service_of(i) not in ("ha-bridge", "mode-service"), f"{case}: the home's controls exposed"


@pytest.mark.parametrize("case", cases())
def test_volumes_by_profile(case):
    claims = {c["metadata"]["name"]: c for c in objects(case, "PersistentVolumeClaim")}
    if "storageClass" in EXPECT[case]:
        for c in claims.values():
            assert c["spec"]["storageClassName"] == EXPECT[case]["storageClass"], case
    for name, d in deployments(case).items():
        vols = {v["name"]: v for v in d["spec"]["template"]["spec"]["volumes"]}
        if catalog()[name].get("models"):
            models = vols["models"]
            if "persistentVolumeClaim" in models:
                assert models["persistentVolumeClaim"]["claimName"] in claims, f"{case}/{name}"
        else:
            assert "models" not in vols, f"{case}/{name}: models volume on a service without models"
        data = vols["data"]
        if "persistentVolumeClaim" in data:
            assert data["persistentVolumeClaim"]["claimName"] in claims, f"{case}/{name}"
            assert d["spec"]["strategy"]["type"] == "Recreate", f"{case}/{name}: ReadWriteOnce needs Recreate"


@pytest.mark.parametrize("case", cases())
def test_monitoring_stack_policy_only_with_the_bundled_stack(case):
    names = [p["metadata"]["name"] for p in objects(case, "NetworkPolicy")]
    assert ("athena-monitoring-stack" in names) == bool(EXPECT[case].get("monitoringStack")), case


@pytest.mark.parametrize("case", [c for c in cases() if "namespace" in EXPECT[c]])
def test_kustomize_namespace(case):
    for obj in load(case):
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == EXPECT[case]["namespace"], f"{case}: {obj['kind']}"


# --- The chart's sources -----------------------------------------------------------


def test_catalog_ports_match_the_services_defaults():
    for name, entry in catalog().items():
        if entry.get("role"):
            text = (ROOT / "services/llm/src/lib.rs").read_text() + (ROOT / "services/llm/src/config.rs").read_text()
            port = 8400 if entry["role"] == "small" else 8401
            assert str(port) in text and entry["http"] == port, name
        else:
            assert entry["http"] == default_port(entry["section"]), name
        if "wyoming" in entry:
            text = (ROOT / f"services/{name}/src/config.rs").read_text()
            assert f'"tcp://0.0.0.0:{entry["wyoming"]}"' in text, name


def test_catalog_gpu_vendors_match_the_code():
    features = {p["name"]: p["features"] for p in cargo_metadata()["packages"]}
    for name, entry in catalog().items():
        package = "athena-llm" if entry.get("role") else f"athena-{name}"
        code = "\n".join(p.read_text() for p in (ROOT / f"services/{'llm' if entry.get('role') else name}/src").rglob("*.rs"))
        nvidia = "cuda" in features[package] or "ort::ep::CUDA" in code
        amd = "hipblas" in features[package] or "rocm" in features[package]
        assert ("nvidia" in entry["gpuVendors"]) == nvidia, f"{name}: NVIDIA back-end"
        assert ("amd" in entry["gpuVendors"]) == amd, f"{name}: AMD back-end"


def test_dashboard_uses_only_metrics_that_exist():
    dashboard = json.loads((CHART / "files/dashboards/athena.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) > 20
    known = metric_names()
    for expr in exprs:
        for name in re.findall(r"\b([a-z][a-z0-9_]*)(?:_bucket)?\{", expr):
            base = re.sub(r"_bucket$", "", name)
            assert base in known, f"dashboard: {base} is not exported by any service"
    stages = set(re.findall(r'stage="([a-z_]+)"', " ".join(exprs)))
    source = (ROOT / "services/orchestrator/src/pipeline.rs").read_text()
    assert stages and all(f'"stage" => "{s}"' in source for s in stages), stages


def key_is_commented(lines: list[str], i: int) -> bool:
    """A key line is commented when it has an inline comment, a comment
    directly above it, or opens or continues a run of siblings that one of
    those covers; the first key under a commented parent is covered by it."""
    line = lines[i]
    if " #" in line:
        return True
    indent = len(line) - len(line.lstrip())
    j = i - 1
    while j >= 0:
        above = lines[j]
        if not above.strip():
            return False
        above_indent = len(above) - len(above.lstrip())
        if above.strip().startswith("#"):
            if above_indent == indent:
                return True
            j -= 1
            continue
        if above_indent > indent or above.lstrip().startswith("- "):
            j -= 1  # inside a previous sibling's block
            continue
        if above_indent == indent:
            if " #" in above:
                return True
            j -= 1  # a sibling: the run's comment covers it
            continue
        return key_is_commented(lines, j)  # the parent
    return False


def test_values_are_all_commented():
    """Every key of the chart's values files and profiles, and of the shared
    defaults, is covered by a comment (its own, or its run of siblings')."""
    files = [CHART / "values.yaml"] + sorted((CHART / "charts").glob("*/values.yaml")) + sorted((K8S / "profiles").glob("*.yaml"))
    defaults = (CHART / "charts/athena-common/templates/_defaults.tpl").read_text()
    texts = {str(f.relative_to(ROOT)): f.read_text() for f in files}
    texts["_defaults.tpl"] = defaults.split('{{- define "athena-common.defaults" -}}', 1)[1].split("{{- end -}}", 1)[0].strip("\n")
    for name, text in texts.items():
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if re.match(r"^\s*[A-Za-z0-9_./-]+:(\s|$)", line):
                assert key_is_commented(lines, i), f"{name}:{i + 1}: {line.strip()} has no comment"


def test_schema_describes_every_default():
    schema = json.loads((CHART / "values.schema.json").read_text())
    service = schema["definitions"]["service"]["properties"]
    text = (CHART / "charts/athena-common/templates/_defaults.tpl").read_text()
    defaults = yaml.safe_load(text.split('{{- define "athena-common.defaults" -}}', 1)[1].split("{{- end -}}", 1)[0])
    assert set(defaults) <= set(service), set(defaults) - set(service)
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values) <= set(schema["properties"]), set(values) - set(schema["properties"])
    assert set(values["global"]) <= set(schema["properties"]["global"]["properties"])


def test_chart_dependencies():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    deps = {d.get("alias", d["name"]): d for d in chart["dependencies"]}
    assert deps["router-small-llm"]["name"] == deps["router-large-llm"]["name"] == "llm"
    for name in SERVICES:
        assert deps[name]["condition"] == f"{name}.enabled" and not deps[name]["repository"], name
        assert (CHART / "charts" / deps[name]["name"] / "Chart.yaml").exists(), name
    for name in ("qdrant", "redis", "kube-prometheus-stack"):
        assert deps[name]["repository"].startswith("https://") and deps[name]["condition"].startswith("global."), name
        assert re.fullmatch(r"\d+\.\d+\.\d+", deps[name]["version"]), f"{name}: pin an exact version"


# --- Dockerfile ----------------------------------------------------------------------


@functools.cache
def dockerfile() -> str:
    return (ROOT / "Dockerfiles/Dockerfile").read_text().replace("\\\n", " ")


def stages() -> dict[str, str]:
    """Stage name -> its FROM line's image (or stage)."""
    return {m.group(2): m.group(1) for m in re.finditer(r"^FROM\s+(?:--platform=\S+\s+)?(\S+)\s+AS\s+(\S+)", dockerfile(), re.M | re.I)}


def workspace_binaries() -> set[str]:
    return {t["name"] for p in cargo_metadata()["packages"] for t in p["targets"] if "bin" in t["kind"]}


def test_dockerfile_copies_the_binaries_the_workspace_builds():
    bins = workspace_binaries()
    built = set(re.search(r"for bin in ([^;]+);", dockerfile()).group(1).split())
    assert built == bins, f"built {built}, workspace has {bins}"
    copied = set(re.findall(r"COPY --from=build /out/(\S+) ", dockerfile()))
    assert copied == bins, f"copied {copied}"
    # Each target runs the binary it copies.
    for name, body in re.findall(r"^FROM runtime AS (\S+)\n(.*?)(?=^FROM |\Z)", dockerfile(), re.M | re.S):
        binary = re.search(r"COPY --from=build /out/(\S+) ", body).group(1)
        entry = json.loads(re.search(r"^ENTRYPOINT (.*)$", body, re.M).group(1))
        assert entry[0] == binary, f"target {name} runs {entry[0]}, copies {binary}"


def test_dockerfile_features_and_stages_exist():
    features = {p["name"]: set(p["features"]) for p in cargo_metadata()["packages"]}
    for value in re.findall(r'ATHENA_CARGO_FEATURES="([^"]*)"', dockerfile()):
        for feature in filter(None, value.split(",")):
            package, name = feature.split("/")
            assert name in features[package], f"{package} has no feature {name}"
    all_stages = stages()
    for accel in ("cpu", "cuda", "rocm"):
        for prefix in ("toolchain", "runtime-base"):
            assert f"{prefix}-{accel}" in all_stages, f"no stage {prefix}-{accel}"
    for m in re.finditer(r"COPY --from=(\S+)", dockerfile()):
        assert m.group(1) in all_stages, f"COPY --from={m.group(1)}: no such stage"


def test_dockerfile_targets_serve_the_catalog_ports():
    targets = {name: body for name, body in re.findall(r"^FROM runtime AS (\S+)\n(.*?)(?=^FROM |\Z)", dockerfile(), re.M | re.S)}
    for name, entry in catalog().items():
        body = targets[entry["image"]]
        exposed = {int(p) for p in re.search(r"^EXPOSE (.*)$", body, re.M).group(1).split()}
        assert entry["http"] in exposed and entry.get("wyoming", entry["http"]) in exposed, name
        assert f"localhost:{entry['http']}/healthz" in re.search(r"^HEALTHCHECK (.*)$", body, re.M).group(1), name
    assert re.search(r"^USER 10001:10001$", dockerfile(), re.M)
    assert "--locked" in dockerfile()


# --- Compose -------------------------------------------------------------------------


@functools.cache
def compose(variant: str = "compose") -> dict:
    path = COMPOSE_OUT / f"{variant}.yaml"
    if not path.exists():
        pytest.skip("ATHENA_DEPLOY_COMPOSE not set (run scripts/validate-deploy.sh)")
    return yaml.safe_load(path.read_text())


def compose_config() -> tuple[dict, dict]:
    config = tomllib.loads((ROOT / "deploy/compose/config/athena.toml").read_text())
    routing = yaml.safe_load((ROOT / "deploy/compose/config/routing.yaml").read_text())
    return config, routing


def published(service: dict) -> dict[int, str]:
    out = {}
    for p in service.get("ports", []):
        if isinstance(p, dict):
            out[int(p["target"])] = p.get("host_ip", "")
        else:
            parts = str(p).split("/")[0].split(":")
            out[int(parts[-1])] = parts[0] if len(parts) == 3 else ""
    return out


def test_compose_runs_every_service_with_pinned_stores():
    services = compose()["services"]
    assert set(SERVICES) | {"redis", "qdrant"} <= set(services)
    for store in ("redis", "qdrant"):
        image = services[store]["image"]
        assert re.search(r":v?\d+\.\d+\.\d+", image), f"{store}: pin the image ({image})"
        assert services[store]["healthcheck"]["test"], store


def test_compose_ports_for_satellites_and_home_assistant():
    services = compose()["services"]
    assert published(services["orchestrator"])[10700] == ""
    assert published(services["stt"])[10300] == ""
    assert published(services["tts"])[10200] == ""
    for name in SERVICES:
        for port, host in published(services[name]).items():
            if port not in (10700, 10300, 10200):
                assert host == "127.0.0.1", f"{name}: HTTP port {port} published beyond this host"


def test_compose_depends_on_health():
    services = compose()["services"]
    targets = {name: body for name, body in re.findall(r"^FROM runtime AS (\S+)\n(.*?)(?=^FROM |\Z)", dockerfile(), re.M | re.S)}
    for name, service in services.items():
        for dep, how in (service.get("depends_on") or {}).items():
            condition = how["condition"]
            assert condition in ("service_healthy", "service_completed_successfully"), f"{name} -> {dep}"
            if condition == "service_healthy":
                has_check = "healthcheck" in services[dep] or "HEALTHCHECK" in targets.get(services[dep].get("build", {}).get("target", ""), "")
                assert has_check, f"{name} waits for {dep}, which has no health check"
    assert {"redis", "stt", "tts", "ha-bridge", "mode-service"} <= set(services["orchestrator"]["depends_on"])


def test_compose_hardening_and_volumes():
    services = compose()["services"]
    for name in SERVICES:
        s = services[name]
        assert s["read_only"] is True and s["cap_drop"] == ["ALL"] and "/tmp" in s["tmpfs"], name
        mounts = {v["target"] if isinstance(v, dict) else v.split(":")[1] for v in s["volumes"]}
        assert "/etc/athena" in mounts, name
        if catalog()[name].get("models"):
            assert "/var/lib/athena/models" in mounts, name
        assert s["environment"]["ATHENA_CONFIG"] == "/etc/athena/athena.toml", name
        assert s["build"]["target"] == catalog()[name]["image"], name
        if catalog()[name].get("role"):
            assert s["command"] == ["--role", catalog()[name]["role"]], name


def test_compose_config_wires_services_by_name():
    services = compose()["services"]
    config, routing = compose_config()
    for section, table in config.items():
        assert section in SECTIONS, section
        check_config_keys(table, "deploy/compose/config/athena.toml")

    def reachable(url: str) -> None:
        u = urlparse(url)
        assert u.hostname in services, f"{url}: no compose service {u.hostname}"
        if u.hostname in catalog():
            assert u.port == catalog()[u.hostname]["http"], url
        elif u.hostname == "redis":
            assert u.port == 6379, url
        elif u.hostname == "qdrant":
            assert u.port == 6334, url

    o = config["orchestrator"]
    for url in (o["ha_bridge_url"], o["mode_service_url"], o["rag_api_url"], o["stt"]["url"], o["tts"]["url"], o["memory"]["redis_url"]):
        reachable(url)
    reachable(config["rag_api"]["qdrant"]["url"])
    reachable(config["mode_service"]["store"]["redis_url"])
    for endpoint, section in (("small", "router_small_llm"), ("large", "router_large_llm")):
        reachable(routing["endpoints"][endpoint]["url"])
        assert routing["endpoints"][endpoint]["model"] == config[section]["model_id"], endpoint
    assert routing_keys_known(routing)
    assert routing_keys_known(yaml.safe_load((ROOT / "deploy/compose/config/routing-host-llm.yaml").read_text()))
    for service in services.values():
        for name in (service.get("environment") or {}):
            check_env_name(name, "compose.yaml")


def test_compose_gpu_variant():
    services = compose("compose-gpu")["services"]
    for name in SERVICES:
        s = services[name]
        if catalog()[name]["gpuVendors"]:
            assert s["runtime"] == "nvidia" and s["image"].endswith("-cuda"), name
            assert s["build"]["args"]["ACCEL"] == "cuda", name
            assert s["environment"][f"ATHENA__{catalog()[name]['section'].upper()}__GPU"] == "true", name
        else:
            assert "runtime" not in s and s["image"].endswith("-cpu"), name
    assert services["gpu-check"]["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"


def test_cpu_compose_stays_off_the_gpu():
    services = compose()["services"]
    for name in SERVICES:
        s = services[name]
        assert s.get("runtime", "runc") == "runc" and s["image"].endswith("-cpu"), name
        assert all(v == "false" for k, v in s["environment"].items() if k.endswith("__GPU")), name


# --- Examples and docs ---------------------------------------------------------------


def test_argocd_application_points_at_the_chart():
    app = yaml.safe_load((K8S / "examples/argocd/application.yaml").read_text())
    assert app["kind"] == "Application"
    sources = app["spec"]["sources"]
    chart = next(s for s in sources if "path" in s)
    assert (ROOT / chart["path"] / "Chart.yaml").exists()
    values_ref = next(s for s in sources if "ref" in s)
    for f in chart["helm"]["valueFiles"]:
        assert f.startswith(f"${values_ref['ref']}/") and (ROOT / f.split("/", 1)[1]).exists(), f


def test_secret_examples_hold_no_secret():
    for f in (K8S / "examples/secrets").glob("*.yaml"):
        for doc in yaml.safe_load_all(f.read_text()):
            if not doc:
                continue
            text = json.dumps(doc)
            assert not re.search(r"eyJ[A-Za-z0-9_-]{20,}", text), f"{f.name}: a token?"
            if doc.get("kind") == "Secret":
                values = list((doc.get("stringData") or {}).values()) + list((doc.get("data") or {}).values())
                assert all("REPLACE" in v for v in values), f"{f.name}: a real value?"


DOCS = ["GPU_SETUP", "STORAGE", "INGRESS", "SECRETS", "AUTOSCALING", "HA_NETWORK", "PERFORMANCE", "TROUBLESHOOTING", "COMPOSE"]


def test_docs_exist_and_their_links_resolve():
    docs = ROOT / "docs/deploy"
    for name in DOCS:
        assert (docs / f"{name}.md").exists(), name
    for md in list(docs.glob("*.md")) + [K8S / "README.md", ROOT / "Dockerfiles/README.md"]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", md.read_text()):
            if re.match(r"[a-z]+://", target):
                continue
            assert (md.parent / target).exists(), f"{md.relative_to(ROOT)}: broken link {target}"


def test_docs_name_only_metrics_that_exist():
    text = "\n".join(p.read_text() for p in (ROOT / "docs/deploy").glob("*.md"))
    for name in set(re.findall(r"`((?:orchestrator|stt|tts|llm|rag|ha_bridge|mode|wyoming|http)_[a-z_]+)`", text)):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert base in metric_names(), f"docs/deploy: {name} is not a metric"
