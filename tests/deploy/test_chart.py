"""The Helm chart deploy/helm/subreg, checked offline: `helm lint --strict` and
`helm template` with the default values and with deploy/helm/values-all-on.yaml,
every rendered manifest validated against the Kubernetes API schemas of
KUBE_VERSION (kubernetes-validate, strict: unknown fields are errors), and the
properties that would break silently in a cluster: locked-down containers,
secrets only by reference, probes, the migrate step, selectors that match.

Helm comes from scripts/bootstrap (built from tools/helm into ~/.cache/subreg);
HELM_BIN overrides the path. Without it these tests fail, they do not skip.
"""
import os
import pathlib
import re
import subprocess

import kubernetes_validate
import pytest
import yaml

from deployhelpers import CACHE, ROOT

CHART = ROOT / "deploy" / "helm" / "subreg"
ALL_ON = ROOT / "deploy" / "helm" / "values-all-on.yaml"
HELM = pathlib.Path(os.environ.get("HELM_BIN") or CACHE / "helm-4.3.2" / "helm")
# The newest Kubernetes release kubernetes-validate 1.37.0 has schemas for; helm
# template renders for the same version (.Capabilities.KubeVersion).
KUBE_VERSION = "1.37.0"
RELEASE, NAMESPACE = "subreg", "registry"
FULLNAME = "subreg"  # the release name contains the chart name: no "-subreg" suffix

SECRET_ENV = {"SUBREG_MONGODB_URI": "mongodb-uri", "SUBREG_JWT_HS256_SECRET": "jwt-hs256-secret"}
VARIANTS = {"default": None, "all-on": ALL_ON}


# --- running helm ---------------------------------------------------------------

@pytest.fixture(scope="session")
def helm(tmp_path_factory):
    """Runs helm with its config, cache and data directories in a temporary
    directory (nothing read from or written to the user's ~/.config/helm)."""
    assert HELM.is_file() and os.access(HELM, os.X_OK), \
        f"helm not found at {HELM}: run scripts/bootstrap (or set HELM_BIN)"
    home = tmp_path_factory.mktemp("helm-home")
    env = dict(os.environ, HELM_CONFIG_HOME=str(home / "config"), HELM_CACHE_HOME=str(home / "cache"),
               HELM_DATA_HOME=str(home / "data"), HELM_NAMESPACE=NAMESPACE)
    version = subprocess.run([str(HELM), "version", "--short"], env=env, capture_output=True, text=True,
                             timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("v4."), version

    def run(*args):
        return subprocess.run([str(HELM), *args], env=env, capture_output=True, text=True, timeout=120)

    return run


def values_args(values):
    return ["-f", str(values)] if values else []


def template(helm, values=None, *extra):
    res = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION,
               *values_args(values), *extra)
    assert res.returncode == 0, res.stderr
    docs = [d for d in yaml.safe_load_all(res.stdout) if d]
    assert docs, "helm template rendered nothing"
    return docs


@pytest.fixture(scope="session")
def rendered(helm):
    return {name: template(helm, values) for name, values in VARIANTS.items()}


def of_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def one(docs, kind):
    found = of_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def pod_specs(docs):
    """(owner, pod template) of every workload: the Deployment and any Job."""
    return [(f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"])
            for d in docs if d["kind"] in ("Deployment", "Job")]


def containers(pod_spec):
    return pod_spec.get("initContainers", []) + pod_spec["containers"]


def server(docs):
    dep = one(docs, "Deployment")
    (c,) = [c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == "subreg"]
    return c


def env_of(container):
    names = [e["name"] for e in container.get("env", [])]
    assert len(names) == len(set(names)), f"duplicate env entries in {container['name']}: {names}"
    return {e["name"]: e for e in container.get("env", [])}


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


# --- lint and schema validation -------------------------------------------------

@pytest.mark.parametrize("variant", VARIANTS)
def test_lint_strict(helm, variant):
    res = helm("lint", "--strict", str(CHART), "--namespace", NAMESPACE, *values_args(VARIANTS[variant]))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 chart(s) failed" in res.stdout, res.stdout
    assert "[WARNING]" not in res.stdout and "[ERROR]" not in res.stdout, res.stdout


def check_service_monitor(doc):
    """kubernetes-validate has no schemas for CRDs, so the Prometheus Operator's
    ServiceMonitor (monitoring.coreos.com/v1) is checked here, minimally: the fields
    the chart sets, with the types the CRD requires."""
    assert doc["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}, set(doc)
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"])
    assert all(isinstance(v, str) for v in doc["metadata"]["labels"].values())
    spec = doc["spec"]
    assert set(spec) <= {"selector", "endpoints", "namespaceSelector", "jobLabel"}, set(spec)
    labels = spec["selector"]["matchLabels"]
    assert labels and all(isinstance(v, str) for v in labels.values())
    assert spec["endpoints"], "no endpoints"
    for ep in spec["endpoints"]:
        assert set(ep) <= {"port", "path", "scheme", "interval", "scrapeTimeout"}, set(ep)
        assert isinstance(ep["port"], str) and ep["path"].startswith("/")
        assert ep.get("scheme", "http") in ("http", "https")
        for k in ("interval", "scrapeTimeout"):
            assert re.fullmatch(r"([0-9]+(ms|s|m|h))+", ep[k]), ep[k]


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_manifest_is_valid_for_kubernetes(rendered, variant):
    for doc in rendered[variant]:
        where = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        if doc["kind"] == "ServiceMonitor":
            check_service_monitor(doc)
            continue
        try:
            used = kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{where}: {e.caught.message} at {list(e.caught.absolute_path)}")
        assert used == KUBE_VERSION.rsplit(".", 1)[0], f"{where} validated against {used}"


def test_validation_is_strict():
    """The check above can fail: an unknown field and a wrong type are refused."""
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
           "spec": {"selector": {"matchLabels": {"a": "b"}},
                    "template": {"metadata": {"labels": {"a": "b"}},
                                 "spec": {"containers": [{"name": "x", "image": "x"}]}}}}
    kubernetes_validate.validate(dep, KUBE_VERSION, strict=True)
    dep["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(dep, KUBE_VERSION, strict=True)
    del dep["spec"]["replica"]
    dep["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": "8080"}]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(dep, KUBE_VERSION, strict=True)


def test_kinds(rendered):
    kinds = lambda docs: sorted(d["kind"] for d in docs)  # noqa: E731
    assert kinds(rendered["default"]) == ["Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"]
    assert kinds(rendered["all-on"]) == sorted([
        "Deployment", "Service", "ServiceAccount", "Ingress", "HorizontalPodAutoscaler", "PodDisruptionBudget",
        "NetworkPolicy", "ServiceMonitor", "Job", "ServiceAccount"])
    for docs in rendered.values():
        for d in docs:
            labels = d["metadata"]["labels"]
            assert labels["app.kubernetes.io/name"] == "subreg", d["kind"]
            assert labels["app.kubernetes.io/instance"] == RELEASE, d["kind"]
            assert labels["app.kubernetes.io/managed-by"] == "Helm", d["kind"]
            assert labels["helm.sh/chart"] == "subreg-0.1.0", d["kind"]


# --- security -------------------------------------------------------------------

@pytest.mark.parametrize("variant", VARIANTS)
def test_every_container_runs_locked_down(rendered, variant):
    specs = pod_specs(rendered[variant])
    assert specs
    for owner, tpl in specs:
        pod = tpl["spec"]
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 10001, owner
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}, owner
        assert pod["automountServiceAccountToken"] is False, owner
        for c in containers(pod):
            where = f"{owner} container {c['name']}"
            sc = c["securityContext"]
            assert sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, where
            assert sc.get("runAsUser", psc.get("runAsUser")) == 10001, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc.get("privileged", False) is False, where
            assert "ALL" in sc["capabilities"]["drop"] and not sc["capabilities"].get("add"), where
            assert sc.get("seccompProfile", psc.get("seccompProfile")) == {"type": "RuntimeDefault"}, where
            assert c["resources"]["requests"] == {"cpu": "100m", "memory": "32Mi"}, where
            assert c["resources"]["limits"] == {"memory": "256Mi"}, where
    for sa in of_kind(rendered[variant], "ServiceAccount"):
        assert sa["automountServiceAccountToken"] is False, sa["metadata"]["name"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_secrets_only_by_reference(rendered, variant):
    docs = rendered[variant]
    for d in of_kind(docs, "Secret"):
        assert not d.get("data") and not d.get("stringData"), f"Secret {d['metadata']['name']} carries values"
    for owner, tpl in pod_specs(docs):
        for c in containers(tpl["spec"]):
            for name, e in env_of(c).items():
                if name in SECRET_ENV:
                    assert "value" not in e, f"{owner}/{c['name']}: {name} as a plain value"
                    assert e["valueFrom"] == {"secretKeyRef": {"name": "subreg", "key": SECRET_ENV[name]}}, e
    env = env_of(server(docs))
    assert set(SECRET_ENV) <= set(env), "the server lacks a secret"


def test_migrate_gets_the_database_not_the_jwt_secret(rendered):
    for variant, docs in rendered.items():
        migrates = [c for _, tpl in pod_specs(docs) for c in containers(tpl["spec"]) if c["name"] == "migrate"]
        assert len(migrates) == 1, variant
        env = env_of(migrates[0])
        assert env["SUBREG_MONGODB_URI"]["valueFrom"]["secretKeyRef"]["key"] == "mongodb-uri"
        assert env["SUBREG_MONGODB_DB"]["value"] == "subreg"
        assert "SUBREG_JWT_HS256_SECRET" not in env, variant
        assert migrates[0]["args"] == ["migrate"], variant
        assert migrates[0]["image"] == server(docs)["image"], variant


# --- the server pod -------------------------------------------------------------

@pytest.mark.parametrize("variant", VARIANTS)
def test_probes_and_shutdown(rendered, variant):
    dep = one(rendered[variant], "Deployment")
    c = server(rendered[variant])
    assert c["args"] == ["serve"]
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert env_of(c)["SUBREG_LISTEN"]["value"] == "0.0.0.0:8080"
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["startupProbe"]["httpGet"]["path"] in ("/healthz", "/readyz")
    # the startup probe gives the process a minute before liveness takes over
    sp = c["startupProbe"]
    assert sp["periodSeconds"] * sp["failureThreshold"] >= 60
    # preStop sleep, then the service's drain of up to 25 s, within the grace period;
    # the kubelet's sleep action: the image (FROM scratch) has no shell and no sleep
    assert list(c["lifecycle"]["preStop"]) == ["sleep"]
    pause = c["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert 1 <= pause <= 10
    grace = dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace == 30 and grace >= pause + 25
    for _, tpl in pod_specs(rendered[variant]):
        for ctr in containers(tpl["spec"]):
            hooks = [ctr.get(k, {}) for k in ("startupProbe", "readinessProbe", "livenessProbe")]
            hooks += list(ctr.get("lifecycle", {}).values())
            assert not any("exec" in h for h in hooks), f"{ctr['name']}: exec needs a shell the image lacks"


def test_the_server_has_a_scratch_tmp(rendered):
    """The root file system is read-only; the XLSX writer's scratch files go to
    /tmp, a memory-backed emptyDir of bounded size."""
    docs = rendered["default"]
    c = server(docs)
    (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
    (vol,) = [v for v in one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]]
    assert vol["emptyDir"] == {"medium": "Memory", "sizeLimit": "64Mi"}


def test_default_migrates_in_an_init_container(rendered):
    docs = rendered["default"]
    dep = one(docs, "Deployment")
    assert dep["spec"]["replicas"] == 2
    init = dep["spec"]["template"]["spec"]["initContainers"]
    assert [c["name"] for c in init] == ["migrate"]
    assert not of_kind(docs, "Job")
    assert one(docs, "PodDisruptionBudget")["spec"] == {
        "minAvailable": 1, "selector": dep["spec"]["selector"]}


@pytest.mark.parametrize("variant", VARIANTS)
def test_selectors_match(rendered, variant):
    docs = rendered[variant]
    dep = one(docs, "Deployment")
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert matches(dep["spec"]["selector"]["matchLabels"], pod_labels)
    svc = one(docs, "Service")
    assert svc["metadata"]["name"] == FULLNAME
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    assert matches(svc["spec"]["selector"], pod_labels)
    for pdb in of_kind(docs, "PodDisruptionBudget"):
        assert matches(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    # the Service must not send traffic to the migrate Job's pods
    for job in of_kind(docs, "Job"):
        assert not matches(svc["spec"]["selector"], job["spec"]["template"]["metadata"]["labels"])
    assert dep["spec"]["template"]["spec"]["serviceAccountName"] in \
        [sa["metadata"]["name"] for sa in of_kind(docs, "ServiceAccount")]


# --- everything on --------------------------------------------------------------

def test_all_on_ingress_terminates_tls(rendered):
    docs = rendered["all-on"]
    ing = one(docs, "Ingress")
    assert ing["spec"]["ingressClassName"] == "nginx"
    assert ing["spec"]["tls"] == [{"secretName": "subreg-tls", "hosts": ["subprocessors.example.com"]}]
    (rule,) = ing["spec"]["rules"]
    assert rule["host"] == "subprocessors.example.com"
    (path,) = rule["http"]["paths"]
    assert path["backend"]["service"] == {"name": FULLNAME, "port": {"name": "http"}}
    env = env_of(server(docs))
    assert env["SUBREG_PUBLIC_BASE_URL"]["value"] == "https://subprocessors.example.com"


def test_all_on_autoscaling_and_disruption_budget(rendered):
    docs = rendered["all-on"]
    dep = one(docs, "Deployment")
    assert "replicas" not in dep["spec"], "the HPA owns the replica count"
    hpa = one(docs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": dep["metadata"]["name"]}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 10)
    assert {m["resource"]["name"] for m in hpa["spec"]["metrics"]} == {"cpu", "memory"}
    assert one(docs, "PodDisruptionBudget")["spec"]["minAvailable"] == 1


def test_all_on_network_policy(rendered):
    docs = rendered["all-on"]
    np = one(docs, "NetworkPolicy")
    spec = np["spec"]
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    for _, tpl in pod_specs(docs):  # the server and the migrate Job
        assert matches(spec["podSelector"]["matchLabels"], tpl["metadata"]["labels"])
    # ingress: port 8080 only, from the ingress controller and Prometheus only
    (rule,) = spec["ingress"]
    assert rule["ports"] == [{"port": 8080, "protocol": "TCP"}]
    peers = rule["from"]
    assert len(peers) == 2 and all(p.get("namespaceSelector") and p.get("podSelector") for p in peers)
    assert peers[0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "ingress-nginx"}
    assert peers[1]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}
    # egress: DNS, MongoDB, HTTPS (webhook receivers, JWKS) and nothing else
    ports = sorted((p["port"], p["protocol"]) for r in spec["egress"] for p in r["ports"])
    assert ports == [(53, "TCP"), (53, "UDP"), (443, "TCP"), (27017, "TCP")]
    for r in spec["egress"]:
        assert r.get("to"), f"egress rule open to any destination: {r}"


def test_all_on_service_monitor(rendered):
    docs = rendered["all-on"]
    sm = one(docs, "ServiceMonitor")
    svc = one(docs, "Service")
    assert matches(sm["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"])
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    (ep,) = sm["spec"]["endpoints"]
    assert ep["port"] in [p["name"] for p in svc["spec"]["ports"]] and ep["path"] == "/metrics"


def test_all_on_migrate_job_is_a_hook(rendered):
    docs = rendered["all-on"]
    job = one(docs, "Job")
    ann = job["metadata"]["annotations"]
    assert set(ann["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    assert "before-hook-creation" in ann["helm.sh/hook-delete-policy"]
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert [c["args"] for c in pod["containers"]] == [["migrate"]]
    assert "initContainers" not in one(docs, "Deployment")["spec"]["template"]["spec"]
    # its ServiceAccount must exist when the hook runs, before the release's objects:
    # a hook itself, with a lower weight
    sa_name = pod["serviceAccountName"]
    (sa,) = [s for s in of_kind(docs, "ServiceAccount") if s["metadata"]["name"] == sa_name]
    sa_ann = sa["metadata"].get("annotations", {})
    assert sa_ann.get("helm.sh/hook") == ann["helm.sh/hook"]
    assert int(sa_ann["helm.sh/hook-weight"]) < int(ann.get("helm.sh/hook-weight", "0"))


def test_all_on_auth_settings_and_public_keys(rendered):
    docs = rendered["all-on"]
    c = server(docs)
    env = env_of(c)
    plain = {k: e["value"] for k, e in env.items() if "value" in e}
    assert plain["SUBREG_JWT_ALGORITHMS"] == "HS256,RS256,ES256"
    assert plain["SUBREG_JWT_JWKS"].startswith("https://")
    assert plain["SUBREG_JWT_ISSUER"] and plain["SUBREG_JWT_AUDIENCE"] == "subreg"
    assert plain["SUBREG_JWT_ROLES_CLAIM"] == "realm_access.roles"
    assert plain["SUBREG_JWT_ROLE_MAP"].count("=") == 3
    # env: numbers as the service parses them (Helm reads YAML numbers as floats:
    # 52428800 must not become 5.24288e+07)
    assert plain["SUBREG_MAX_DOCUMENT_BYTES"] == "52428800"
    assert plain["SUBREG_PUBLIC_RATE_PER_MIN"] == "0"
    assert plain["SUBREG_THREADS"] == "96"
    assert env["SUBREG_WEBHOOK_ALLOW_NETS"]["valueFrom"]["configMapKeyRef"]["name"] == "subreg-network"
    # the public keys: mounted read-only from the ConfigMap, and SUBREG_JWT_PUBLIC_KEYS
    # names exactly the mounted files
    (mount,) = [m for m in c["volumeMounts"] if m["name"] != "tmp"]
    assert mount["readOnly"] is True
    (vol,) = [v for v in one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
              if v["name"] == mount["name"]]
    assert vol["configMap"]["name"] == "subreg-jwt-keys"
    files = {f"{mount['mountPath']}/{i['path']}" for i in vol["configMap"]["items"]}
    listed = plain["SUBREG_JWT_PUBLIC_KEYS"].split(",")
    assert {k.split("=", 1)[-1] for k in listed} == files and len(files) == 2
    assert f"ci-2026={mount['mountPath']}/ci-signer.pem" in listed


# --- values the chart refuses ---------------------------------------------------

# (values, what the error names, whether values.schema.json catches it). The schema's
# refusals fail `helm lint` too; the rest are the templates' `fail` checks (mixes a
# schema cannot express), which fail template/install but which Helm's lint only
# logs.
BAD_VALUES = {
    "replicas-not-a-number": ('replicaCount: "two"\n', "/replicaCount", True),
    "migrate-mode": ("migrate:\n  mode: bogus\n", "/migrate/mode", True),
    "misspelt-key": ("replicas: 3\n", "replicas", True),
    "secret-in-env": ("env:\n  SUBREG_MONGODB_URI: mongodb://user:pw@db/\n", "/env/SUBREG_MONGODB_URI", True),
    "secret-in-extraEnv": ("extraEnv:\n  - name: SUBREG_JWT_HS256_SECRET\n    value: xxxxxxxx\n", "/extraEnv/0", True),
    "not-a-subreg-setting": ("env:\n  LD_PRELOAD: /tmp/x.so\n", "'LD_PRELOAD' not allowed", True),
    "log-level": ("config:\n  logLevel: verbose\n", "/config/logLevel", True),
    "hs256-without-secret": ("existingSecret:\n  jwtHs256SecretKey: ''\n", "/existingSecret/jwtHs256SecretKey", True),
    "grace-below-drain": ("terminationGracePeriodSeconds: 10\n", "/terminationGracePeriodSeconds", True),
    "ingress-without-host": ("ingress:\n  enabled: true\n", "/ingress/hosts", True),
    "grace-below-prestop-and-drain": ("terminationGracePeriodSeconds: 26\npreStopSleepSeconds: 5\n",
                                      "terminationGracePeriodSeconds (26)", False),
    "autoscaling-min-above-max": ("autoscaling:\n  enabled: true\n  minReplicas: 5\n  maxReplicas: 3\n",
                                  "minReplicas is above", False),
    "keys-from-two-sources": ("auth:\n  publicKeys:\n    configMap: a\n    secret: b\n    keys: [{key: k.pem}]\n",
                              "either configMap or secret", False),
}


@pytest.mark.parametrize("case", BAD_VALUES)
def test_bad_values_are_refused(helm, tmp_path, case):
    text, mention, by_schema = BAD_VALUES[case]
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    tmpl = helm("template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION, "-f", str(bad))
    assert tmpl.returncode != 0 and not tmpl.stdout.strip(), tmpl.stdout
    assert mention in tmpl.stderr, tmpl.stderr
    if by_schema:
        assert "values don't meet the specifications of the schema" in tmpl.stderr, tmpl.stderr
        lint = helm("lint", "--strict", str(CHART), "-f", str(bad))
        assert lint.returncode != 0, lint.stdout
        assert mention in lint.stdout + lint.stderr, lint.stdout + lint.stderr


def test_good_variations_render(helm):
    """The knobs around the refusals above still render: RS256-only without the
    HS256 key, one replica (no PDB: it would block node drains), a Secret for the
    keys, no ServiceAccount of our own."""
    docs = template(helm, None,
                    "--set", "replicaCount=1", "--set", "auth.algorithms=RS256",
                    "--set", "existingSecret.jwtHs256SecretKey=", "--set", "auth.publicKeys.secret=keys",
                    "--set", "auth.publicKeys.keys[0].key=k.pem", "--set", "serviceAccount.create=false",
                    "--set", "migrate.mode=job")
    assert not of_kind(docs, "PodDisruptionBudget")
    assert not of_kind(docs, "ServiceAccount")
    env = env_of(server(docs))
    assert "SUBREG_JWT_HS256_SECRET" not in env
    assert env["SUBREG_JWT_PUBLIC_KEYS"]["value"] == "/etc/subreg/jwt-keys/k.pem"
    (vol,) = [v for v in one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"] if v["name"] != "tmp"]
    assert vol["secret"]["secretName"] == "keys"
    assert one(docs, "Job")["spec"]["template"]["spec"]["serviceAccountName"] == "default"
    for doc in docs:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
