package conformance_test

// The suites through the real host: each built-in plugin is compiled to
// wasip1 by the test, loaded with host.Load exactly as the server loads a
// plugin file, and checked through the host's typed clients; store-redis
// runs on a real redis-server (internal/redistest).

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tetratelabs/wazero"

	"github.com/wasmhls/wasmhls/abi"
	"github.com/wasmhls/wasmhls/config"
	"github.com/wasmhls/wasmhls/host"
	"github.com/wasmhls/wasmhls/internal/redistest"
	"github.com/wasmhls/wasmhls/plugins/conformance"
	"github.com/wasmhls/wasmhls/session"
)

var kinds = map[string]string{
	"store-null": abi.KindStore, "store-redis": abi.KindStore,
	"takeover-lease": abi.KindTakeover, "cleanup-lease": abi.KindCleanup,
}

var built struct {
	sync.Mutex
	dir   string
	paths map[string]string
}

func TestMain(m *testing.M) {
	if os.Getenv(racerEnv) != "" {
		os.Exit(racerMain())
	}
	dir, err := os.MkdirTemp("", "wasmhls-conformance-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	built.dir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// buildPlugin compiles ./plugins/NAME as the Makefile does, once per test
// binary.
func buildPlugin(t testing.TB, name string) string {
	t.Helper()
	built.Lock()
	defer built.Unlock()
	if p, ok := built.paths[name]; ok {
		return p
	}
	if built.paths == nil {
		built.paths = map[string]string{}
	}
	out := filepath.Join(built.dir, name+".wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "../"+name)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build plugin %s: %v\n%s", name, err, b)
	}
	built.paths[name] = out
	return out
}

func cacheDir() string { return filepath.Join(built.dir, "cache") }

func load(t testing.TB, name string, slot config.PluginSlot, rdb redis.UniversalClient) *host.Plugin {
	t.Helper()
	slot.Path = buildPlugin(t, name)
	p, err := host.Load(context.Background(), kinds[name], slot,
		host.Options{Redis: rdb, CacheDir: cacheDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Limits: testLimits})
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

var redisSlot = config.PluginSlot{Capabilities: []string{abi.CapRedis}}

// testLimits: these tests check behaviour, not speed, on a machine shared
// with other test binaries and the race detector; a generous call deadline
// keeps a slow instance start from reading as a plugin failure.
var testLimits = config.PluginLimits{CallTimeout: config.Duration(30 * time.Second)}

func newRedis(t testing.TB, url string) redis.UniversalClient {
	t.Helper()
	c, err := host.NewRedis(url)
	if err != nil {
		t.Fatalf("redis %s: %v", url, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestStoreRedisConformance(t *testing.T) {
	srv := redistest.Start(t)
	p := load(t, "store-redis", redisSlot, newRedis(t, srv.URL()))
	if d := p.Description(); d.Name != "store-redis" || d.Kind != abi.KindStore || d.ABI != abi.Version {
		t.Fatalf("description %+v", d)
	}
	conformance.RunT(t, host.NewStoreClient(p), conformance.Options{})
}

// store-null passes the stateless subset, and fails the full suite: the
// suite can tell a store that keeps records from one that keeps none.
func TestStoreNullConformance(t *testing.T) {
	s := host.NewStoreClient(load(t, "store-null", config.PluginSlot{}, nil))
	conformance.RunT(t, s, conformance.Options{Stateless: true})

	failed := map[string]bool{}
	for _, r := range conformance.Run(t.Context(), s, conformance.Options{}) {
		if r.Err != nil {
			failed[r.Name] = true
		}
	}
	for _, name := range []string{"get", "create_existing", "takeover_valid_lease", "stale_epoch", "concurrent_takeover"} {
		if !failed[name] {
			t.Errorf("full suite case %s passed on store-null, which keeps nothing", name)
		}
	}
}

// waitExpired polls get until Redis time has passed the lease.
func waitExpired(t *testing.T, s session.Store, id string) abi.JobRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		rec, err := s.Get(ctx, id)
		if err != nil {
			t.Fatalf("get %s: %v", id, err)
		}
		if rec.NowMs >= rec.LeaseExpiresMs {
			return rec
		}
		select {
		case <-ctx.Done():
			t.Fatalf("lease of %s never expired by store time (last now %d, expires %d)", id, rec.NowMs, rec.LeaseExpiresMs)
		case <-tick.C:
		}
	}
}

const (
	racerEnv       = "WASMHLS_CONFORMANCE_RACER"
	racersPerProc  = 8
	racerLeaseMs   = 30_000
	racerReadyLine = "ready"
)

// TestTakeoverRaceTwoProcesses: two OS processes, each with its own host
// and plugin instances and 8 goroutines, race to take over one expired job
// on one Redis: exactly one of the 16 wins and the epoch rises by one.
func TestTakeoverRaceTwoProcesses(t *testing.T) {
	srv := redistest.Start(t)
	s := host.NewStoreClient(load(t, "store-redis", redisSlot, newRedis(t, srv.URL())))
	const id = "race-procs"
	first, created, err := s.Create(t.Context(), abi.JobRecord{ID: id, Owner: "dead-pod", State: abi.StateActive}, 200*time.Millisecond)
	if err != nil || !created {
		t.Fatalf("create: created=%v err=%v", created, err)
	}
	waitExpired(t, s, id)

	type proc struct {
		cmd *exec.Cmd
		in  io.WriteCloser
		out *bufio.Reader
	}
	var procs []proc
	for i := range 2 {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), racerEnv+"=1", "RACER_WASM="+buildPlugin(t, "store-redis"),
			"RACER_CACHE="+cacheDir(), "RACER_REDIS="+srv.URL(), "RACER_JOB="+id, fmt.Sprintf("RACER_PREFIX=proc%d-", i))
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start racer %d: %v", i, err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		procs = append(procs, proc{cmd: cmd, in: in, out: bufio.NewReader(out)})
	}
	for i, p := range procs {
		line, err := p.out.ReadString('\n')
		if strings.TrimSpace(line) != racerReadyLine {
			t.Fatalf("racer %d: %q, %v (want %q)", i, line, err, racerReadyLine)
		}
	}
	for _, p := range procs {
		if _, err := io.WriteString(p.in, "go\n"); err != nil {
			t.Fatalf("signal racer: %v", err)
		}
	}
	var winners []string
	for i, p := range procs {
		var res racerResult
		line, err := p.out.ReadString('\n')
		if err != nil {
			t.Fatalf("racer %d result: %v", i, err)
		}
		if err := json.Unmarshal([]byte(line), &res); err != nil {
			t.Fatalf("racer %d result %q: %v", i, line, err)
		}
		if res.Err != "" {
			t.Fatalf("racer %d: %s", i, res.Err)
		}
		if err := p.cmd.Wait(); err != nil {
			t.Fatalf("racer %d exit: %v", i, err)
		}
		winners = append(winners, res.Winners...)
	}
	if len(winners) != 1 {
		t.Fatalf("%d of %d racers in 2 processes won: %v, want exactly 1", len(winners), 2*racersPerProc, winners)
	}
	got, err := s.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.Epoch != first.Epoch+1 || got.Owner != winners[0] {
		t.Fatalf("after the race: owner %q epoch %d, want %q epoch %d", got.Owner, got.Epoch, winners[0], first.Epoch+1)
	}
}

type racerResult struct {
	Winners []string `json:"winners"`
	Err     string   `json:"err,omitempty"`
}

// racerMain is the child process of TestTakeoverRaceTwoProcesses.
func racerMain() int {
	res := racerResult{Winners: []string{}}
	err := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		rdb, err := host.NewRedis(os.Getenv("RACER_REDIS"))
		if err != nil {
			return err
		}
		defer rdb.Close()
		slot := redisSlot
		slot.Path = os.Getenv("RACER_WASM")
		p, err := host.Load(ctx, abi.KindStore, slot, host.Options{Redis: rdb, CacheDir: os.Getenv("RACER_CACHE"),
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Limits: config.PluginLimits{PoolSize: racersPerProc, CallTimeout: testLimits.CallTimeout}})
		if err != nil {
			return err
		}
		defer p.Close(ctx)
		// Start every pooled instance now, so that the race is between
		// takeover calls and not between instance start-ups.
		var wg sync.WaitGroup
		for range racersPerProc {
			wg.Go(func() { _, _ = host.NewStoreClient(p).Get(ctx, "warm-up") })
		}
		wg.Wait()
		fmt.Println(racerReadyLine)
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			return fmt.Errorf("wait for go: %w", err)
		}
		recs, err := conformance.RaceTakeover(ctx, host.NewStoreClient(p), os.Getenv("RACER_JOB"), os.Getenv("RACER_PREFIX"), racersPerProc, racerLeaseMs*time.Millisecond)
		for _, r := range recs {
			res.Winners = append(res.Winners, r.Owner)
		}
		return err
	}()
	if err != nil {
		res.Err = err.Error()
	}
	b, _ := json.Marshal(res)
	fmt.Println(string(b))
	return 0
}

// importsOf lists a module's host imports as "module.name".
func importsOf(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rt := wazero.NewRuntime(t.Context())
	defer rt.Close(context.Background())
	m, err := rt.CompileModule(t.Context(), b)
	if err != nil {
		t.Fatalf("compile %s: %v", path, err)
	}
	var out []string
	for _, f := range m.ImportedFunctions() {
		mod, name, _ := f.Import()
		if mod == abi.HostModule {
			out = append(out, mod+"."+name)
		}
	}
	return out
}

// Lease expiry follows Redis TIME, never a pod's clock. The pod's clock
// reaches a plugin only through the clock capability (now_ms); store-redis
// and takeover-lease do not even import it, so skewing the pod's clock
// cannot change what they decide. What the store reports is Redis time:
// create's now_ms lies between two TIME reads around it and its lease ends
// exactly lease after that instant, and a takeover before that store time
// is refused whatever the caller's own clock says.
func TestLeaseFollowsRedisTime(t *testing.T) {
	for _, name := range []string{"store-redis", "takeover-lease"} {
		for _, imp := range importsOf(t, buildPlugin(t, name)) {
			if imp == abi.HostModule+"."+abi.FuncNowMs {
				t.Errorf("%s imports the pod clock %s", name, imp)
			}
		}
	}
	srv := redistest.Start(t)
	rdb := srv.Client()
	s := host.NewStoreClient(load(t, "store-redis", redisSlot, newRedis(t, srv.URL())))
	ctx := t.Context()
	before, err := rdb.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	const lease = 30 * time.Second
	rec, _, err := s.Create(ctx, abi.JobRecord{ID: "clock", Owner: "a", OwnerURL: "http://a"}, lease)
	if err != nil {
		t.Fatal(err)
	}
	after, err := rdb.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if rec.NowMs < before.UnixMilli() || rec.NowMs > after.UnixMilli() {
		t.Fatalf("create's now_ms %d is not Redis time (TIME %d..%d)", rec.NowMs, before.UnixMilli(), after.UnixMilli())
	}
	if rec.LeaseExpiresMs != rec.NowMs+lease.Milliseconds() {
		t.Fatalf("lease_expires_ms %d, want now_ms %d + %d", rec.LeaseExpiresMs, rec.NowMs, lease.Milliseconds())
	}
	// A caller whose clock runs an hour ahead thinks the lease is long
	// over; the store still refuses the takeover.
	skewedNow := time.Now().Add(time.Hour).UnixMilli()
	if skewedNow < rec.LeaseExpiresMs {
		t.Fatal("test setup: skewed clock not past the lease")
	}
	cur, err := s.Takeover(ctx, "clock", "b", "http://b", lease)
	if !errors.Is(err, session.ErrLeaseValid) {
		t.Fatalf("takeover by a pod with a skewed clock: %v, want lease valid", err)
	}
	if cur.NowMs >= cur.LeaseExpiresMs {
		t.Fatalf("refused takeover reports store time %d past the lease %d", cur.NowMs, cur.LeaseExpiresMs)
	}
	// The policy, given that store time, proxies whatever the pod's clock.
	policy := host.NewTakeoverClient(load(t, "takeover-lease", config.PluginSlot{}, nil))
	d, err := policy.Decide(ctx, abi.DecideRequest{Record: cur, NowMs: cur.NowMs, Pod: "b"})
	if err != nil || d.Decision != abi.DecideProxy {
		t.Fatalf("decide on a valid lease: %+v %v, want proxy", d, err)
	}
}

func TestStoreRedisConfig(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newRedis(t, srv.URL())
	slot := redisSlot
	slot.Config = map[string]any{"key_prefix": "tenant-7", "retention_ms": 60000}
	s := host.NewStoreClient(load(t, "store-redis", slot, rdb))
	if _, _, err := s.Create(t.Context(), abi.JobRecord{ID: "j1", Owner: "a"}, time.Second); err != nil {
		t.Fatal(err)
	}
	c := srv.Client()
	ttl := c.PTTL(t.Context(), "{tenant-7:j1}").Val()
	if ttl <= 0 || ttl > 61*time.Second {
		t.Fatalf("key {tenant-7:j1}: TTL %v, want lease 1s + retention 60s at most", ttl)
	}
	if keys := c.Keys(t.Context(), "{wasmhls*").Val(); len(keys) != 0 {
		t.Fatalf("default prefix used despite key_prefix: %v", keys)
	}
	for _, bad := range []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{"key_prefx": "x"}, "key_prefx"},
		{map[string]any{"key_prefix": "{x}"}, "key_prefix"},
		{map[string]any{"retention_ms": 1}, "retention_ms"},
	} {
		slot := redisSlot
		slot.Path = buildPlugin(t, "store-redis")
		slot.Config = bad.cfg
		p, err := host.Load(t.Context(), abi.KindStore, slot, host.Options{Redis: rdb, CacheDir: cacheDir(),
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err == nil {
			_ = p.Close(context.Background())
			t.Errorf("config %v loaded", bad.cfg)
			continue
		}
		if !strings.Contains(err.Error(), bad.want) {
			t.Errorf("config %v: error %q does not name %s", bad.cfg, err, bad.want)
		}
	}
}

func TestTakeoverLeaseThroughHost(t *testing.T) {
	conformance.RunT(t, host.NewTakeoverClient(load(t, "takeover-lease", config.PluginSlot{}, nil)), conformance.Options{})

	const now = int64(1_700_000_000_000)
	p := host.NewTakeoverClient(load(t, "takeover-lease",
		config.PluginSlot{Config: map[string]any{"grace_ms": 2000, "max_jobs_per_pod": 3, "wait_ms": 500}}, nil))
	rec := func(expires int64, state string) abi.JobRecord {
		return abi.JobRecord{ID: "j", Owner: "a", OwnerURL: "http://a", Epoch: 1, LeaseExpiresMs: expires, State: state}
	}
	for _, c := range []struct {
		name string
		req  abi.DecideRequest
		want string
	}{
		{"valid", abi.DecideRequest{Record: rec(now+10, abi.StateActive), NowMs: now, Pod: "b"}, abi.DecideProxy},
		{"in grace", abi.DecideRequest{Record: rec(now-1999, abi.StateActive), NowMs: now, Pod: "b"}, abi.DecideProxy},
		{"past grace", abi.DecideRequest{Record: rec(now-2000, abi.StateActive), NowMs: now, Pod: "b"}, abi.DecideTakeover},
		{"released", abi.DecideRequest{Record: rec(now+9999, abi.StateReleased), NowMs: now, Pod: "b"}, abi.DecideTakeover},
		{"at cap", abi.DecideRequest{Record: rec(now-5000, abi.StateActive), NowMs: now, Pod: "b", PodJobs: 3}, abi.DecideWait},
	} {
		d, err := p.Decide(t.Context(), c.req)
		if err != nil || d.Decision != c.want {
			t.Errorf("%s: %+v %v, want %s", c.name, d, err, c.want)
		}
	}
	if _, err := p.Decide(t.Context(), abi.DecideRequest{Record: rec(now, abi.StateActive), Pod: "b"}); err == nil {
		t.Error("decide without store time answered")
	}

	slot := config.PluginSlot{Path: buildPlugin(t, "takeover-lease"), Config: map[string]any{"grace": 5}}
	if _, err := host.Load(t.Context(), abi.KindTakeover, slot, host.Options{CacheDir: cacheDir(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}); err == nil || !strings.Contains(err.Error(), "grace") {
		t.Errorf("unknown config key: load error %v, want one naming it", err)
	}
}

func TestCleanupLeaseThroughHost(t *testing.T) {
	c := host.NewCleanupClient(load(t, "cleanup-lease", config.PluginSlot{}, nil))
	conformance.RunT(t, c, conformance.Options{})
	const now, hour = int64(1_700_000_000_000), int64(3_600_000)
	dir := func(p string, age, bytes int64, live bool, refs ...string) abi.CleanupDir {
		return abi.CleanupDir{Path: p, Bytes: bytes, ModTimeMs: now - age, AccessMs: now - age, Referenced: refs, LiveLease: live}
	}
	for _, tc := range []struct {
		name string
		req  abi.PlanRequest
		want []string
	}{
		{"age", abi.PlanRequest{NowMs: now, MaxAgeMs: 24 * hour, TotalBytes: 200,
			Dirs: []abi.CleanupDir{dir("a/old", 25*hour, 100, false), dir("a/live", 99*hour, 100, true, "j")}}, []string{"a/old"}},
		{"high water LRU", abi.PlanRequest{NowMs: now, MaxAgeMs: 24 * hour, HighWaterBytes: 150, TotalBytes: 300,
			Dirs: []abi.CleanupDir{dir("h/new", hour, 100, false), dir("h/old", 2*hour, 100, false), dir("h/live", 3*hour, 100, true, "j")}},
			[]string{"h/old", "h/new"}},
	} {
		resp, err := c.Plan(t.Context(), tc.req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if strings.Join(resp.Delete, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: delete %v, want %v", tc.name, resp.Delete, tc.want)
		}
	}
}

// Buffers that do not fit the kit's first guess: a config block over the
// 4 KiB first buffer and a record over the 16 KiB redis reply buffer both
// take the "host returns the size, guest retries" path, and the retried
// redis call is answered from the host's cache, not run twice.
func TestStoreRedisLargeMessages(t *testing.T) {
	srv := redistest.Start(t)
	slot := redisSlot
	prefix := strings.Repeat("p", 5000)
	slot.Config = map[string]any{"key_prefix": prefix}
	s := host.NewStoreClient(load(t, "store-redis", slot, newRedis(t, srv.URL())))
	big := strings.Repeat("m", 40<<10)
	// create's reply (the record) does not fit the first buffer: had the
	// retry run the script again, it would have found the record and
	// answered created=false.
	rec, created, err := s.Create(t.Context(), abi.JobRecord{ID: "big", Owner: "a", ManifestPath: big}, time.Minute)
	if err != nil || !created {
		t.Fatalf("create: created=%v err=%v", created, err)
	}
	got, err := s.Get(t.Context(), "big")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.ManifestPath != big || got.Epoch != rec.Epoch {
		t.Fatalf("get returned a manifest_path of %d bytes epoch %d, want %d bytes epoch %d", len(got.ManifestPath), got.Epoch, len(big), rec.Epoch)
	}
	if n := srv.Client().Exists(t.Context(), "{"+prefix+":big}").Val(); n != 1 {
		t.Fatalf("record not stored under the configured 5000-byte prefix")
	}
	if err := s.Release(t.Context(), "big", "a", rec.Epoch); err != nil {
		t.Fatalf("release: %v", err)
	}
	nrec, err := s.Takeover(t.Context(), "big", "b", "http://b", time.Minute)
	if err != nil {
		t.Fatalf("takeover: %v", err)
	}
	if nrec.Epoch != rec.Epoch+1 || nrec.ManifestPath != big {
		t.Fatalf("takeover: epoch %d (want %d), manifest_path %d bytes", nrec.Epoch, rec.Epoch+1, len(nrec.ManifestPath))
	}
}
