// Package k8s_test checks the Kubernetes manifests of deploy/k8s: every
// document decodes strictly into its typed Kubernetes object, and the fields
// HA depends on hold (docs/HA.md, "HA on Kubernetes").
package k8s_test

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/wasmhls/wasmhls/config"
)

// manifests holds every object of deploy/k8s by kind and name.
type manifests struct {
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	pvcs        map[string]*corev1.PersistentVolumeClaim
	pdbs        map[string]*policyv1.PodDisruptionBudget
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// load decodes every YAML document of every *.yaml file here. A document of
// an unknown kind, an unknown field or a duplicate name fails the test.
func load(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{
		deployments: map[string]*appsv1.Deployment{},
		services:    map[string]*corev1.Service{},
		configMaps:  map[string]*corev1.ConfigMap{},
		pvcs:        map[string]*corev1.PersistentVolumeClaim{},
		pdbs:        map[string]*policyv1.PodDisruptionBudget{},
	}
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests found: %v", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range docSep.Split(string(data), -1) {
			if len(bytes.TrimSpace(stripComments(doc))) == 0 {
				continue
			}
			where := fmt.Sprintf("%s document %d", file, i+1)
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			var name string
			switch tm.APIVersion + "/" + tm.Kind {
			case "apps/v1/Deployment":
				name = decode(t, where, doc, m.deployments)
			case "v1/Service":
				name = decode(t, where, doc, m.services)
			case "v1/ConfigMap":
				name = decode(t, where, doc, m.configMaps)
			case "v1/PersistentVolumeClaim":
				name = decode(t, where, doc, m.pvcs)
			case "policy/v1/PodDisruptionBudget":
				name = decode(t, where, doc, m.pdbs)
			default:
				t.Fatalf("%s: unexpected object %s %s (add it to this test)", where, tm.APIVersion, tm.Kind)
			}
			t.Logf("%s: %s %s", where, tm.Kind, name)
		}
	}
	return m
}

func stripComments(doc string) []byte {
	var b bytes.Buffer
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.Bytes()
}

// decode strictly decodes doc into a new T and files it under its name.
func decode[T any, PT interface {
	*T
	GetName() string
}](t *testing.T, where, doc string, into map[string]PT) string {
	t.Helper()
	obj := PT(new(T))
	if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	name := obj.GetName()
	if name == "" {
		t.Fatalf("%s: metadata.name is empty", where)
	}
	if _, dup := into[name]; dup {
		t.Fatalf("%s: duplicate name %q", where, name)
	}
	into[name] = obj
	return name
}

func get[V any](t *testing.T, m map[string]V, kind, name string) V {
	t.Helper()
	v, ok := m[name]
	if !ok {
		t.Fatalf("no %s named %q in deploy/k8s", kind, name)
	}
	return v
}

func container(t *testing.T, d *appsv1.Deployment, name string) *corev1.Container {
	t.Helper()
	for i := range d.Spec.Template.Spec.Containers {
		if c := &d.Spec.Template.Spec.Containers[i]; c.Name == name {
			return c
		}
	}
	t.Fatalf("deployment %s has no container %q", d.Name, name)
	return nil
}

func envVar(c *corev1.Container, name string) (corev1.EnvVar, int) {
	for i, e := range c.Env {
		if e.Name == name {
			return e, i
		}
	}
	return corev1.EnvVar{}, -1
}

// podConfig is the configuration a wasmhls pod ends up with: the ConfigMap's
// config.yaml plus the container's environment as Kubernetes would expand
// it, parsed and validated by the server's own config package.
func podConfig(t *testing.T, m *manifests) config.Config {
	t.Helper()
	d := get(t, m.deployments, "Deployment", "wasmhls")
	c := container(t, d, "wasmhls")
	i := slices.Index(c.Args, "--config")
	if i < 0 || i+1 >= len(c.Args) {
		t.Fatalf("wasmhls args %v: no --config FILE", c.Args)
	}
	cfgPath := c.Args[i+1]
	cmName, key := mountedConfigMap(t, d, c, cfgPath)
	cm := get(t, m.configMaps, "ConfigMap", cmName)
	data, ok := cm.Data[key]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %q (mounted as %s)", cmName, key, cfgPath)
	}
	// The downward API values a real pod gets.
	fields := map[string]string{"metadata.name": "wasmhls-6d9f7c-abcde", "status.podIP": "10.1.2.3"}
	vars := map[string]string{}
	var env []string
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil {
			if e.ValueFrom.FieldRef == nil {
				t.Fatalf("env %s: only fieldRef sources are expected", e.Name)
			}
			v, ok = fields[e.ValueFrom.FieldRef.FieldPath]
			if !ok {
				t.Fatalf("env %s: unexpected fieldRef %s", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
		}
		// $(VAR) expands only variables defined earlier in the list.
		v = regexp.MustCompile(`\$\(([A-Z0-9_]+)\)`).ReplaceAllStringFunc(v, func(s string) string {
			name := s[2 : len(s)-1]
			val, ok := vars[name]
			if !ok {
				t.Fatalf("env %s refers to $(%s), which is not defined before it", e.Name, name)
			}
			return val
		})
		vars[e.Name] = v
		env = append(env, e.Name+"="+v)
	}
	cfg, err := config.Parse([]byte(data), env)
	if err != nil {
		t.Fatalf("ConfigMap %s %s with the pod's environment: %v", cmName, key, err)
	}
	return cfg
}

// mountedConfigMap finds the ConfigMap volume mounted so that file exists
// in container c, and the key the file comes from.
func mountedConfigMap(t *testing.T, d *appsv1.Deployment, c *corev1.Container, file string) (string, string) {
	t.Helper()
	for _, vm := range c.VolumeMounts {
		rel, err := filepath.Rel(vm.MountPath, file)
		if err != nil || strings.HasPrefix(rel, "..") || strings.Contains(rel, "/") {
			continue
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == vm.Name && v.ConfigMap != nil {
				return v.ConfigMap.Name, rel
			}
		}
	}
	t.Fatalf("no ConfigMap volume provides %s in container %s", file, c.Name)
	return "", ""
}

func TestWasmhlsDeployment(t *testing.T) {
	m := load(t)
	d := get(t, m.deployments, "Deployment", "wasmhls")
	cfg := podConfig(t, m)
	spec := d.Spec.Template.Spec
	c := container(t, d, "wasmhls")

	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Errorf("replicas = %d, want 3", ptrVal(d.Spec.Replicas))
	}
	st := d.Spec.Strategy
	if st.Type != appsv1.RollingUpdateDeploymentStrategyType || st.RollingUpdate == nil {
		t.Fatalf("strategy = %+v, want RollingUpdate", st)
	}
	if mu := st.RollingUpdate.MaxUnavailable; mu == nil || *mu != intstr.FromInt32(0) {
		t.Errorf("maxUnavailable = %v, want 0", mu)
	}
	if ms := st.RollingUpdate.MaxSurge; ms == nil || *ms != intstr.FromInt32(1) {
		t.Errorf("maxSurge = %v, want 1", ms)
	}

	// Pod name and advertise URL from the downward API.
	if e, _ := envVar(c, "POD_NAME"); e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.name" {
		t.Errorf("POD_NAME = %+v, want fieldRef metadata.name", e)
	}
	if cfg.PodName != "wasmhls-6d9f7c-abcde" {
		t.Errorf("pod_name resolves to %q, want the pod's name", cfg.PodName)
	}
	port := listenPort(t, cfg.Listen)
	if want := "http://10.1.2.3:" + strconv.Itoa(port); cfg.AdvertiseURL != want {
		t.Errorf("advertise_url resolves to %q, want %q (pod IP and listen port)", cfg.AdvertiseURL, want)
	}
	if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return int(p.ContainerPort) == port }) {
		t.Errorf("container ports %v do not include the listen port %d", c.Ports, port)
	}

	// Probes on the HTTP contract's routes.
	checkProbe(t, "readiness", c.ReadinessProbe, "/readyz", c, port)
	checkProbe(t, "liveness", c.LivenessProbe, "/healthz", c, port)

	// Drain fits the grace period: the preStop pause, then at most one lease
	// (the drain releases every job; past a lease the others would have
	// taken over anyway).
	preStop := preStopSeconds(t, c)
	if preStop < 1 {
		t.Errorf("preStop pause %ds: endpoints need a moment to drop the pod before SIGTERM", preStop)
	}
	drain := time.Duration(preStop)*time.Second + cfg.Lease.Duration.D()
	if spec.TerminationGracePeriodSeconds == nil {
		t.Fatal("terminationGracePeriodSeconds unset")
	}
	if grace := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second; grace <= drain {
		t.Errorf("terminationGracePeriodSeconds %s ≤ preStop %ds + lease %s", grace, preStop, cfg.Lease.Duration.D())
	}

	// The shared transcode_dir is a ReadWriteMany claim.
	claim := claimMountedAt(t, d, c, cfg.TranscodeDir)
	pvc := get(t, m.pvcs, "PersistentVolumeClaim", claim)
	if !slices.Contains(pvc.Spec.AccessModes, corev1.ReadWriteMany) {
		t.Errorf("PVC %s accessModes %v, want ReadWriteMany", claim, pvc.Spec.AccessModes)
	}
	if vm := mountAt(c, cfg.TranscodeDir); vm.ReadOnly {
		t.Errorf("transcode_dir mounted read-only")
	}
	claimMountedAt(t, d, c, cfg.MediaDir)

	// HA store: store-redis on the Redis Service.
	if cfg.Plugins.Store.Path != "builtin:store-redis" {
		t.Errorf("plugins.store.path = %q, want builtin:store-redis", cfg.Plugins.Store.Path)
	}
	u, err := url.Parse(cfg.Redis.URL)
	if err != nil {
		t.Fatalf("redis.url: %v", err)
	}
	svc := get(t, m.services, "Service", u.Hostname())
	rport, _ := strconv.Atoi(u.Port())
	if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return int(p.Port) == rport }) {
		t.Errorf("redis.url port %d not served by Service %s", rport, svc.Name)
	}
	if d := serviceBackend(t, m, svc); d.Name != "wasmhls-redis" {
		t.Errorf("Service %s selects Deployment %s", svc.Name, d.Name)
	}
	// The wazero cache and the read-only root filesystem.
	if cfg.Plugins.CacheDir == "" || mountAt(c, cfg.Plugins.CacheDir).Name == "" {
		t.Errorf("plugins.cache_dir %q is not on a writable volume", cfg.Plugins.CacheDir)
	}
}

func TestServicesSelectTheirPods(t *testing.T) {
	m := load(t)
	for _, name := range []string{"wasmhls", "wasmhls-redis"} {
		svc := get(t, m.services, "Service", name)
		d := serviceBackend(t, m, svc)
		for _, sp := range svc.Spec.Ports {
			if !targetsContainerPort(d, sp.TargetPort) {
				t.Errorf("Service %s port %s: targetPort %s matches no container port of %s", name, sp.Name, sp.TargetPort.String(), d.Name)
			}
		}
	}
	if svc := get(t, m.services, "Service", "wasmhls"); svc.Spec.SessionAffinity != corev1.ServiceAffinityNone {
		t.Errorf("wasmhls Service sessionAffinity %q, want None (any pod serves any request)", svc.Spec.SessionAffinity)
	}
	for name, d := range m.deployments {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil {
			t.Fatalf("Deployment %s selector: %v", name, err)
		}
		if !sel.Matches(labelSet(d.Spec.Template.Labels)) {
			t.Errorf("Deployment %s selector does not match its pod template", name)
		}
	}
	pdb := get(t, m.pdbs, "PodDisruptionBudget", "wasmhls")
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || !sel.Matches(labelSet(get(t, m.deployments, "Deployment", "wasmhls").Spec.Template.Labels)) {
		t.Errorf("PodDisruptionBudget does not select the wasmhls pods (%v)", err)
	}
}

type labelSet map[string]string

func (l labelSet) Has(k string) bool              { _, ok := l[k]; return ok }
func (l labelSet) Get(k string) string            { return l[k] }
func (l labelSet) Lookup(k string) (string, bool) { v, ok := l[k]; return v, ok }

// serviceBackend returns the one Deployment whose pods svc selects.
func serviceBackend(t *testing.T, m *manifests, svc *corev1.Service) *appsv1.Deployment {
	t.Helper()
	var found []*appsv1.Deployment
	for _, d := range m.deployments {
		match := len(svc.Spec.Selector) > 0
		for k, v := range svc.Spec.Selector {
			if d.Spec.Template.Labels[k] != v {
				match = false
			}
		}
		if match {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		t.Fatalf("Service %s selects %d Deployments, want 1", svc.Name, len(found))
	}
	return found[0]
}

func targetsContainerPort(d *appsv1.Deployment, tp intstr.IntOrString) bool {
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			if (tp.Type == intstr.String && p.Name == tp.StrVal) || (tp.Type == intstr.Int && p.ContainerPort == tp.IntVal) {
				return true
			}
		}
	}
	return false
}

func listenPort(t *testing.T, listen string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(listen)
	if err != nil {
		t.Fatalf("listen %q: %v", listen, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("listen %q: %v", listen, err)
	}
	return n
}

func checkProbe(t *testing.T, what string, p *corev1.Probe, path string, c *corev1.Container, port int) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s probe: want httpGet %s", what, path)
		return
	}
	if p.HTTPGet.Path != path {
		t.Errorf("%s probe path %q, want %q", what, p.HTTPGet.Path, path)
	}
	pp := p.HTTPGet.Port
	ok := (pp.Type == intstr.Int && int(pp.IntVal) == port) ||
		(pp.Type == intstr.String && slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool {
			return cp.Name == pp.StrVal && int(cp.ContainerPort) == port
		}))
	if !ok {
		t.Errorf("%s probe port %s is not the listen port %d", what, pp.String(), port)
	}
}

func preStopSeconds(t *testing.T, c *corev1.Container) int {
	t.Helper()
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil {
		t.Fatal("no preStop hook: SIGTERM would race the endpoint update")
	}
	ps := c.Lifecycle.PreStop
	switch {
	case ps.Sleep != nil:
		return int(ps.Sleep.Seconds)
	case ps.Exec != nil && len(ps.Exec.Command) == 2 && ps.Exec.Command[0] == "sleep":
		n, err := strconv.Atoi(ps.Exec.Command[1])
		if err != nil {
			t.Fatalf("preStop sleep %q: %v", ps.Exec.Command[1], err)
		}
		return n
	}
	t.Fatalf("preStop %+v: want a sleep", ps)
	return 0
}

// mountAt returns the mount of c whose path is dir or contains it.
func mountAt(c *corev1.Container, dir string) corev1.VolumeMount {
	var best corev1.VolumeMount
	for _, vm := range c.VolumeMounts {
		rel, err := filepath.Rel(vm.MountPath, dir)
		if err == nil && !strings.HasPrefix(rel, "..") && len(vm.MountPath) > len(best.MountPath) {
			best = vm
		}
	}
	return best
}

// claimMountedAt returns the PVC name behind the mount holding dir.
func claimMountedAt(t *testing.T, d *appsv1.Deployment, c *corev1.Container, dir string) string {
	t.Helper()
	vm := mountAt(c, dir)
	if vm.Name == "" {
		t.Fatalf("%s is on no volume of container %s", dir, c.Name)
	}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == vm.Name {
			if v.PersistentVolumeClaim == nil {
				t.Fatalf("%s is on volume %s, which is not a PersistentVolumeClaim", dir, v.Name)
			}
			return v.PersistentVolumeClaim.ClaimName
		}
	}
	t.Fatalf("mount %s names no volume", vm.Name)
	return ""
}

func ptrVal(p *int32) any {
	if p == nil {
		return "unset"
	}
	return *p
}
