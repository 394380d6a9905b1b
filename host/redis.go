package host

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wasmhls/wasmhls/abi"
)

// pingTimeout bounds NewRedis' reachability check.
const pingTimeout = 5 * time.Second

// NewRedis opens the client for redis.url and pings it. Accepted forms:
//
//	redis://[user:pass@]host:port[/db][?opts]   one server (rediss:// for TLS, unix:///path)
//	redis-sentinel://[user:pass@]host:port[/db]?master_name=NAME[&addr=host2:port]...
//	redis-cluster://[user:pass@]host:port[?addr=host2:port]...
//
// The sentinel and cluster forms take go-redis' query options
// (ParseFailoverURL, ParseClusterURL). A failed ping is an error naming the
// URL (password redacted): an HA pod must not start without its store.
func NewRedis(rawURL string) (redis.UniversalClient, error) {
	shown := redact(rawURL)
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, fmt.Errorf("redis.url %s: want redis://, rediss://, unix://, redis-sentinel:// or redis-cluster://", shown)
	}
	var c redis.UniversalClient
	switch scheme {
	case "redis", "rediss", "unix":
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redis.url %s: %w", shown, err)
		}
		c = redis.NewClient(o)
	case "redis-sentinel":
		o, err := redis.ParseFailoverURL("redis://" + rest)
		if err != nil {
			return nil, fmt.Errorf("redis.url %s: %w", shown, err)
		}
		if o.MasterName == "" {
			return nil, fmt.Errorf("redis.url %s: a sentinel URL needs ?master_name=NAME", shown)
		}
		// One credential for sentinels and master unless told otherwise.
		if o.Username == "" && o.Password == "" {
			o.Username, o.Password = o.SentinelUsername, o.SentinelPassword
		}
		c = redis.NewFailoverClient(o)
	case "redis-cluster":
		o, err := redis.ParseClusterURL("redis://" + rest)
		if err != nil {
			return nil, fmt.Errorf("redis.url %s: %w", shown, err)
		}
		c = redis.NewClusterClient(o)
	default:
		return nil, fmt.Errorf("redis.url %s: unknown scheme %q (want redis, rediss, unix, redis-sentinel or redis-cluster)", shown, scheme)
	}
	ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("redis %s is not reachable: %w", shown, err)
	}
	return c, nil
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// scriptCache remembers each script's SHA1 so a call hashes nothing.
type scriptCache struct{ m sync.Map } // script source -> hex sha1

func (s *scriptCache) sha(src string) string {
	if v, ok := s.m.Load(src); ok {
		return v.(string)
	}
	sum := sha1.Sum([]byte(src))
	h := hex.EncodeToString(sum[:])
	s.m.Store(src, h)
	return h
}

// runRedis executes one RedisRequest and returns the RedisResponse JSON.
// Command and script errors are part of the response; an error return
// means the request itself was unusable.
func (p *Plugin) runRedis(ctx context.Context, reqJSON []byte) ([]byte, error) {
	var req abi.RedisRequest
	dec := json.NewDecoder(bytes.NewReader(reqJSON))
	dec.UseNumber() // keep integers exact (epochs, timestamps)
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("decode redis request: %w", err)
	}
	args := make([]any, len(req.Args))
	for i, a := range req.Args {
		v, err := redisArg(a)
		if err != nil {
			return nil, fmt.Errorf("redis argument %d: %w", i, err)
		}
		args[i] = v
	}
	var (
		val any
		err error
	)
	switch {
	case req.Script != "":
		sha := p.scripts.sha(req.Script)
		val, err = p.redis.EvalSha(ctx, sha, req.Keys, args...).Result()
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			if err = p.redis.ScriptLoad(ctx, req.Script).Err(); err == nil {
				val, err = p.redis.EvalSha(ctx, sha, req.Keys, args...).Result()
			}
		}
	case len(args) > 0:
		val, err = p.redis.Do(ctx, args...).Result()
	default:
		return nil, errors.New("redis request has neither args nor script")
	}
	var resp abi.RedisResponse
	switch {
	case errors.Is(err, redis.Nil):
		resp.Nil = true
	case err != nil:
		resp.Error = err.Error()
	default:
		resp.Value = redisValue(val)
	}
	out, err := json.Marshal(resp)
	if err != nil {
		return nil, fmt.Errorf("encode redis reply: %w", err)
	}
	if len(out) > p.maxMsg {
		out, _ = json.Marshal(abi.RedisResponse{Error: fmt.Sprintf("redis reply of %d bytes exceeds the %d-byte limit (max_message_kb)", len(out), p.maxMsg)})
	}
	return out, nil
}

func redisArg(a any) (any, error) {
	switch v := a.(type) {
	case json.Number:
		return string(v), nil
	case string, bool:
		return v, nil
	case nil:
		return "", nil
	default:
		return nil, fmt.Errorf("want a string, number or bool, got %T", a)
	}
}

// redisValue makes a go-redis reply JSON-encodable: RESP3 maps get string
// keys, errors nested in arrays become {"error": msg}.
func redisValue(v any) any {
	switch t := v.(type) {
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = redisValue(x)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[fmt.Sprint(k)] = redisValue(x)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = redisValue(x)
		}
		return out
	case error:
		return map[string]any{"error": t.Error()}
	}
	return v
}
