package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice/internal/auth"
)

// The Kubernetes objects' model: the fields the manifests use, decoded
// strictly, so that a misspelt or misplaced field fails as the API server
// would refuse it. A field the manifests start to use is added here.
type (
	k8sMeta struct {
		Name        string            `yaml:"name"`
		Namespace   string            `yaml:"namespace"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	}
	k8sHeader struct {
		APIVersion string  `yaml:"apiVersion"`
		Kind       string  `yaml:"kind"`
		Metadata   k8sMeta `yaml:"metadata"`
	}
	configMap struct {
		k8sHeader `yaml:",inline"`
		Data      map[string]string `yaml:"data"`
	}
	secret struct {
		k8sHeader  `yaml:",inline"`
		Type       string            `yaml:"type"`
		StringData map[string]string `yaml:"stringData"`
		Data       map[string]string `yaml:"data"`
	}
	labelSelector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	service struct {
		k8sHeader `yaml:",inline"`
		Spec      struct {
			Type                     string            `yaml:"type"`
			ClusterIP                string            `yaml:"clusterIP"`
			PublishNotReadyAddresses bool              `yaml:"publishNotReadyAddresses"`
			Selector                 map[string]string `yaml:"selector"`
			Ports                    []struct {
				Name       string    `yaml:"name"`
				Port       int       `yaml:"port"`
				TargetPort yaml.Node `yaml:"targetPort"`
				Protocol   string    `yaml:"protocol"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	pdb struct {
		k8sHeader `yaml:",inline"`
		Spec      struct {
			MaxUnavailable *int          `yaml:"maxUnavailable"`
			MinAvailable   *int          `yaml:"minAvailable"`
			Selector       labelSelector `yaml:"selector"`
		} `yaml:"spec"`
	}
	statefulSet struct {
		k8sHeader `yaml:",inline"`
		Spec      struct {
			ServiceName         string        `yaml:"serviceName"`
			Replicas            int           `yaml:"replicas"`
			PodManagementPolicy string        `yaml:"podManagementPolicy"`
			Selector            labelSelector `yaml:"selector"`
			Template            struct {
				Metadata k8sMeta `yaml:"metadata"`
				Spec     podSpec `yaml:"spec"`
			} `yaml:"template"`
			VolumeClaimTemplates []struct {
				Metadata k8sMeta `yaml:"metadata"`
				Spec     struct {
					AccessModes      []string `yaml:"accessModes"`
					StorageClassName string   `yaml:"storageClassName"`
					Resources        struct {
						Requests map[string]string `yaml:"requests"`
					} `yaml:"resources"`
				} `yaml:"spec"`
			} `yaml:"volumeClaimTemplates"`
		} `yaml:"spec"`
	}
	podSpec struct {
		TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
		SecurityContext               *struct {
			RunAsNonRoot   bool `yaml:"runAsNonRoot"`
			RunAsUser      int  `yaml:"runAsUser"`
			RunAsGroup     int  `yaml:"runAsGroup"`
			FSGroup        int  `yaml:"fsGroup"`
			SeccompProfile struct {
				Type string `yaml:"type"`
			} `yaml:"seccompProfile"`
		} `yaml:"securityContext"`
		// Affinity is passed through unchecked.
		Affinity   map[string]any `yaml:"affinity"`
		Containers []container    `yaml:"containers"`
		Volumes    []struct {
			Name      string `yaml:"name"`
			ConfigMap *struct {
				Name string `yaml:"name"`
			} `yaml:"configMap"`
			Secret *struct {
				SecretName  string `yaml:"secretName"`
				DefaultMode int    `yaml:"defaultMode"`
				Items       []struct {
					Key  string `yaml:"key"`
					Path string `yaml:"path"`
				} `yaml:"items"`
			} `yaml:"secret"`
			EmptyDir *struct{} `yaml:"emptyDir"`
		} `yaml:"volumes"`
	}
	container struct {
		Name    string   `yaml:"name"`
		Image   string   `yaml:"image"`
		Command []string `yaml:"command"`
		Args    []string `yaml:"args"`
		Env     []struct {
			Name      string `yaml:"name"`
			Value     string `yaml:"value"`
			ValueFrom *struct {
				FieldRef *struct {
					FieldPath string `yaml:"fieldPath"`
				} `yaml:"fieldRef"`
				SecretKeyRef *struct {
					Name string `yaml:"name"`
					Key  string `yaml:"key"`
				} `yaml:"secretKeyRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
			Protocol      string `yaml:"protocol"`
		} `yaml:"ports"`
		StartupProbe   *probe `yaml:"startupProbe"`
		LivenessProbe  *probe `yaml:"livenessProbe"`
		ReadinessProbe *probe `yaml:"readinessProbe"`
		Lifecycle      *struct {
			PreStop *struct {
				Exec *struct {
					Command []string `yaml:"command"`
				} `yaml:"exec"`
				Sleep *struct {
					Seconds int `yaml:"seconds"`
				} `yaml:"sleep"`
			} `yaml:"preStop"`
		} `yaml:"lifecycle"`
		Resources struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext *struct {
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
			Capabilities             struct {
				Drop []string `yaml:"drop"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			ReadOnly  bool   `yaml:"readOnly"`
		} `yaml:"volumeMounts"`
	}
	probe struct {
		HTTPGet *struct {
			Path   string    `yaml:"path"`
			Port   yaml.Node `yaml:"port"`
			Scheme string    `yaml:"scheme"`
		} `yaml:"httpGet"`
		InitialDelaySeconds int `yaml:"initialDelaySeconds"`
		PeriodSeconds       int `yaml:"periodSeconds"`
		TimeoutSeconds      int `yaml:"timeoutSeconds"`
		FailureThreshold    int `yaml:"failureThreshold"`
		SuccessThreshold    int `yaml:"successThreshold"`
	}
)

// kinds are the kinds the manifests may hold, by apiVersion and kind.
var kinds = map[string]func() any{
	"v1/ConfigMap":                  func() any { return new(configMap) },
	"v1/Secret":                     func() any { return new(secret) },
	"v1/Service":                    func() any { return new(service) },
	"apps/v1/StatefulSet":           func() any { return new(statefulSet) },
	"policy/v1/PodDisruptionBudget": func() any { return new(pdb) },
}

// manifests are the Kubernetes objects, by kind, then name.
type manifests struct {
	configMaps   map[string]*configMap
	secrets      map[string]*secret
	services     map[string]*service
	statefulSets map[string]*statefulSet
	pdbs         map[string]*pdb
}

var dns1123 = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func readManifests(t *testing.T) manifests {
	t.Helper()
	m := manifests{map[string]*configMap{}, map[string]*secret{}, map[string]*service{}, map[string]*statefulSet{}, map[string]*pdb{}}
	files, err := filepath.Glob(filepath.Join("kubernetes", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		data, err := os.ReadFile(file)
		require.NoError(t, err)
		docs := yaml.NewDecoder(bytes.NewReader(data))
		for i := 0; ; i++ {
			var node yaml.Node
			if err := docs.Decode(&node); errors.Is(err, io.EOF) {
				break
			} else {
				require.NoError(t, err, "%s, document %d", file, i)
			}
			var h struct {
				APIVersion string  `yaml:"apiVersion"`
				Kind       string  `yaml:"kind"`
				Metadata   k8sMeta `yaml:"metadata"`
			}
			require.NoError(t, node.Decode(&h), "%s, document %d", file, i)
			where := file + ": " + h.Kind + " " + h.Metadata.Name
			newObj, ok := kinds[h.APIVersion+"/"+h.Kind]
			require.True(t, ok, "%s, document %d: apiVersion %q, kind %q: not a kind these tests know (add its model)", file, i, h.APIVersion, h.Kind)
			require.Regexp(t, dns1123, h.Metadata.Name, "%s: metadata.name", where)
			// Strictly, through YAML again (yaml.Node.Decode does not
			// check known fields).
			raw, err := yaml.Marshal(&node)
			require.NoError(t, err)
			obj := newObj()
			dec := yaml.NewDecoder(bytes.NewReader(raw))
			dec.KnownFields(true)
			require.NoError(t, dec.Decode(obj), where)
			name := h.Metadata.Name
			var dup bool
			switch o := obj.(type) {
			case *configMap:
				_, dup = m.configMaps[name]
				m.configMaps[name] = o
			case *secret:
				_, dup = m.secrets[name]
				m.secrets[name] = o
			case *service:
				_, dup = m.services[name]
				m.services[name] = o
			case *statefulSet:
				_, dup = m.statefulSets[name]
				m.statefulSets[name] = o
			case *pdb:
				_, dup = m.pdbs[name]
				m.pdbs[name] = o
			}
			require.False(t, dup, "%s: defined twice", where)
		}
	}
	return m
}

func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// portNumber resolves a probe's or Service's port (a number or a
// container port's name) against a container's ports.
func portNumber(t *testing.T, where string, n yaml.Node, c container) int {
	t.Helper()
	if p, err := strconv.Atoi(n.Value); err == nil {
		return p
	}
	for _, p := range c.Ports {
		if p.Name == n.Value {
			return p.ContainerPort
		}
	}
	require.Fail(t, "unknown port", "%s: port %q is not a port of container %s", where, n.Value, c.Name)
	return 0
}

func TestKubernetes(t *testing.T) {
	m := readManifests(t)

	// Secrets: the admin key in the repository is a placeholder that
	// sluice refuses, never a usable key.
	for name, s := range m.secrets {
		for k, v := range s.StringData {
			_, _, err := auth.ParseToken(strings.TrimSpace(v))
			require.Error(t, err, "Secret %s, %s: a real API key must not be in the repository", name, k)
		}
	}
	secretKey := func(where, name, key string) {
		s, ok := m.secrets[name]
		require.True(t, ok, "%s: Secret %s is not in the manifests", where, name)
		_, inString := s.StringData[key]
		_, inData := s.Data[key]
		require.True(t, inString || inData, "%s: Secret %s has no key %s", where, name, key)
	}

	// Workloads.
	sluiceSets, natsSets := 0, 0
	for name, ss := range m.statefulSets {
		where := "StatefulSet " + name
		spec := ss.Spec
		require.Positive(t, spec.Replicas, where)
		require.True(t, subset(spec.Selector.MatchLabels, spec.Template.Metadata.Labels), "%s: the selector matches the pod template's labels", where)
		svc, ok := m.services[spec.ServiceName]
		require.True(t, ok, "%s: serviceName %s is not a Service of the manifests", where, spec.ServiceName)
		require.Equal(t, "None", svc.Spec.ClusterIP, "%s: its serviceName must be a headless Service", where)
		require.NotEmpty(t, spec.Template.Spec.Containers, where)

		volumes := map[string]bool{}
		for _, v := range spec.VolumeClaimTemplates {
			volumes[v.Metadata.Name] = true
			require.NotEmpty(t, v.Spec.Resources.Requests["storage"], "%s: volume claim %s: storage", where, v.Metadata.Name)
		}
		for _, v := range spec.Template.Spec.Volumes {
			require.False(t, volumes[v.Name], "%s: volume %s twice", where, v.Name)
			volumes[v.Name] = true
			if v.ConfigMap != nil {
				_, ok := m.configMaps[v.ConfigMap.Name]
				require.True(t, ok, "%s: volume %s: ConfigMap %s is not in the manifests", where, v.Name, v.ConfigMap.Name)
			}
			if v.Secret != nil {
				for _, it := range v.Secret.Items {
					secretKey(where+": volume "+v.Name, v.Secret.SecretName, it.Key)
				}
			}
		}
		for _, c := range spec.Template.Spec.Containers {
			cw := where + ", container " + c.Name
			require.NotEmpty(t, c.Name, where)
			require.NotEmpty(t, c.Image, "%s: image", cw)
			require.NotEmpty(t, c.Resources.Requests, "%s: resource requests", cw)
			require.NotEmpty(t, c.Resources.Limits["memory"], "%s: a memory limit", cw)
			for _, vm := range c.VolumeMounts {
				require.True(t, volumes[vm.Name], "%s: mounts volume %s, which the pod does not have", cw, vm.Name)
			}
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					secretKey(cw+": env "+e.Name, e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key)
				}
			}
			for _, p := range []*probe{c.StartupProbe, c.LivenessProbe, c.ReadinessProbe} {
				if p != nil {
					require.NotNil(t, p.HTTPGet, "%s: probes are HTTP GETs", cw)
					portNumber(t, cw+" probe", p.HTTPGet.Port, c)
				}
			}
			switch {
			case strings.HasPrefix(c.Image, "nats:"):
				natsSets++
				checkNATSPod(t, m, ss, c)
			case strings.Contains(c.Image, "sluice"):
				sluiceSets++
				checkSluicePod(t, m, ss, c)
			default:
				require.Fail(t, "unknown image", "%s: image %s: neither NATS nor Sluice; add its checks", cw, c.Image)
			}
		}
	}
	require.Equal(t, 1, sluiceSets, "one Sluice StatefulSet")
	require.Equal(t, 1, natsSets, "one NATS StatefulSet")

	// Services select pods and name their ports.
	for name, svc := range m.services {
		where := "Service " + name
		var target *statefulSet
		for _, ss := range m.statefulSets {
			if subset(svc.Spec.Selector, ss.Spec.Template.Metadata.Labels) {
				target = ss
			}
		}
		require.NotNil(t, target, "%s: its selector matches no pod template", where)
		require.NotEmpty(t, svc.Spec.Ports, where)
		for _, p := range svc.Spec.Ports {
			if p.TargetPort.Value == "" {
				continue // the same as port
			}
			portNumber(t, where+" port "+p.Name, p.TargetPort, target.Spec.Template.Spec.Containers[0])
		}
	}

	// Disruption budgets cover a workload and leave it running.
	for name, b := range m.pdbs {
		where := "PodDisruptionBudget " + name
		var target *statefulSet
		for _, ss := range m.statefulSets {
			if subset(b.Spec.Selector.MatchLabels, ss.Spec.Template.Metadata.Labels) {
				target = ss
			}
		}
		require.NotNil(t, target, "%s: its selector matches no pod template", where)
		require.NotNil(t, b.Spec.MaxUnavailable, "%s: maxUnavailable", where)
		require.Less(t, *b.Spec.MaxUnavailable, (target.Spec.Replicas+1)/2, "%s: a majority keeps running", where)
	}
	for _, ss := range m.statefulSets {
		covered := false
		for _, b := range m.pdbs {
			covered = covered || subset(b.Spec.Selector.MatchLabels, ss.Spec.Template.Metadata.Labels)
		}
		require.True(t, covered, "StatefulSet %s: a PodDisruptionBudget", ss.Metadata.Name)
	}
}

// natsNodes are the DNS names of a NATS StatefulSet's pods.
func natsPodNames(ss *statefulSet) []string {
	var out []string
	for i := range ss.Spec.Replicas {
		out = append(out, ss.Metadata.Name+"-"+strconv.Itoa(i)+"."+ss.Spec.ServiceName)
	}
	return out
}

func natsStatefulSet(t *testing.T, m manifests) *statefulSet {
	t.Helper()
	for _, ss := range m.statefulSets {
		if strings.HasPrefix(ss.Spec.Template.Spec.Containers[0].Image, "nats:") {
			return ss
		}
	}
	require.Fail(t, "no NATS StatefulSet")
	return nil
}

func containerPort(c container, name string) int {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

func checkNATSPod(t *testing.T, m manifests, ss *statefulSet, c container) {
	t.Helper()
	where := "StatefulSet " + ss.Metadata.Name
	require.Equal(t, 3, ss.Spec.Replicas, "%s: a 3-node cluster", where)
	require.Equal(t, "Parallel", ss.Spec.PodManagementPolicy, "%s: the nodes start together to form the cluster", where)
	require.Len(t, c.Args, 2, "%s: --config FILE", where)
	require.Equal(t, "--config", c.Args[0], where)
	var conf string
	for _, vm := range c.VolumeMounts {
		if rest, ok := strings.CutPrefix(c.Args[1], vm.MountPath+"/"); ok {
			for _, v := range ss.Spec.Template.Spec.Volumes {
				if v.Name == vm.Name && v.ConfigMap != nil {
					conf = m.configMaps[v.ConfigMap.Name].Data[rest]
				}
			}
		}
	}
	require.NotEmpty(t, conf, "%s: --config %s is a file of a ConfigMap volume", where, c.Args[1])

	// Each pod's environment as the kubelet sets it.
	for i, pod := range natsPodNames(ss) {
		env := map[string]string{}
		for _, e := range c.Env {
			switch {
			case e.ValueFrom == nil:
				env[e.Name] = e.Value
			case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name":
				env[e.Name] = ss.Metadata.Name + "-" + strconv.Itoa(i)
			default:
				env[e.Name] = "from-a-secret"
			}
		}
		o := natsConf(t, conf, env, hostPorts(natsPodNames(ss), containerPort(c, "cluster")))
		require.Equal(t, strings.Split(pod, ".")[0], o.ServerName, "%s: server_name is the pod's name", where)
		require.Equal(t, containerPort(c, "client"), o.Port, "%s: the client port", where)
		require.Equal(t, containerPort(c, "cluster"), o.Cluster.Port, "%s: the cluster port", where)
		require.Equal(t, containerPort(c, "monitor"), o.HTTPPort, "%s: the monitoring port", where)
		for _, vm := range c.VolumeMounts {
			if vm.MountPath == o.StoreDir {
				require.Equal(t, ss.Spec.VolumeClaimTemplates[0].Metadata.Name, vm.Name, "%s: the store is on the pod's volume claim", where)
			}
		}
		for _, p := range []*probe{c.StartupProbe, c.LivenessProbe, c.ReadinessProbe} {
			require.NotNil(t, p, "%s: startup, liveness and readiness probes", where)
			require.True(t, strings.HasPrefix(p.HTTPGet.Path, "/healthz"), "%s: probes ask /healthz", where)
			require.Equal(t, o.HTTPPort, portNumber(t, where, p.HTTPGet.Port, c), "%s: probes on the monitoring port", where)
		}
		grace := ss.Spec.Template.Spec.TerminationGracePeriodSeconds
		require.NotNil(t, grace, where)
		require.Greater(t, time.Duration(*grace)*time.Second, o.LameDuckDuration+o.LameDuckGracePeriod, "%s: time for lame duck mode", where)
	}
	svc := m.services[ss.Spec.ServiceName]
	require.True(t, svc.Spec.PublishNotReadyAddresses, "Service %s: the nodes find each other before they are ready", svc.Metadata.Name)
}

func checkSluicePod(t *testing.T, m manifests, ss *statefulSet, c container) {
	t.Helper()
	where := "StatefulSet " + ss.Metadata.Name
	require.Empty(t, c.Command, "%s: the image's entrypoint is /sluice; give args", where)
	cmd := checkCommand(t, where, c.Args)
	require.Equal(t, "serve", cmd.sub, where)
	require.Empty(t, cmd.value("insecure"), "%s: no --insecure", where)

	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	checkEnv(t, where, serveHelp(t), env)

	nats := natsStatefulSet(t, m)
	natsURLs(t, where, cmd.value("nats-url"), natsPodNames(nats), containerPort(nats.Spec.Template.Spec.Containers[0], "client"))
	_, ok := env["SLUICE_NATS_TOKEN"]
	require.True(t, ok, "%s: the NATS token, from the Secret", where)
	_, ok = env["SLUICE_DOCSTORE"]
	require.True(t, ok, "%s: the shared document store (--docstore), from the Secret", where)

	// The API listens beyond loopback: an admin key from the Secret.
	httpAddr := cmd.value("http")
	require.NotEmpty(t, httpAddr, where)
	keyFile := cmd.value("admin-key-file")
	require.NotEmpty(t, keyFile, "%s: --admin-key-file", where)
	mounted := false
	for _, vm := range c.VolumeMounts {
		if filepath.Dir(keyFile) == vm.MountPath {
			for _, v := range ss.Spec.Template.Spec.Volumes {
				if v.Name == vm.Name && v.Secret != nil {
					for _, it := range v.Secret.Items {
						mounted = mounted || it.Path == filepath.Base(keyFile)
					}
				}
			}
		}
	}
	require.True(t, mounted, "%s: --admin-key-file %s is a file of a Secret volume", where, keyFile)

	// Probes: routes that need no key, on the --http port; the kubelet's
	// Host is the pod's IP address, which the Host check accepts.
	port := portOf(t, httpAddr)
	require.NotNil(t, c.ReadinessProbe, where)
	require.NotNil(t, c.LivenessProbe, where)
	require.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path, "%s: readiness is /readyz", where)
	require.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path, "%s: liveness is /healthz (a stalled engine must not restart every pod)", where)
	for _, p := range []*probe{c.StartupProbe, c.LivenessProbe, c.ReadinessProbe} {
		if p != nil {
			checkProbe(t, where, p.HTTPGet.Path, strconv.Itoa(portNumber(t, where, p.HTTPGet.Port, c)), port)
		}
	}

	// The names of the Service that selects these pods pass the Host
	// check ($(POD_NAMESPACE) as the kubelet expands it).
	hosts := strings.ReplaceAll(env["SLUICE_PUBLIC_HOST"], "$(POD_NAMESPACE)", "prod")
	var names []string
	for name, svc := range m.services {
		if subset(svc.Spec.Selector, ss.Spec.Template.Metadata.Labels) && svc.Spec.ClusterIP != "None" {
			names = append(names, name+":"+port, name+".prod.svc:"+port, name+".prod.svc.cluster.local:"+port)
		}
	}
	require.NotEmpty(t, names, "%s: a Service for the HTTP API", where)
	checkPublicHosts(t, where, splitComma(hosts), names...)

	// A graceful stop fits in the grace period.
	grace := ss.Spec.Template.Spec.TerminationGracePeriodSeconds
	require.NotNil(t, grace, "%s: terminationGracePeriodSeconds", where)
	need := stopBudget
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		need += time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	require.Greater(t, time.Duration(*grace)*time.Second, need, "%s: terminationGracePeriodSeconds leaves no time for a graceful stop", where)

	// Its own data directory on its own volume claim.
	dataDir := cmd.value("data-dir")
	require.NotEmpty(t, dataDir, where)
	onClaim := false
	for _, vm := range c.VolumeMounts {
		if vm.MountPath == dataDir {
			for _, v := range ss.Spec.VolumeClaimTemplates {
				onClaim = onClaim || v.Metadata.Name == vm.Name
			}
		}
	}
	require.True(t, onClaim, "%s: --data-dir %s is on a volume claim of the pod", where, dataDir)

	sc := ss.Spec.Template.Spec.SecurityContext
	require.NotNil(t, sc, where)
	require.True(t, sc.RunAsNonRoot, where)
	require.NotZero(t, sc.RunAsUser, where)
}
