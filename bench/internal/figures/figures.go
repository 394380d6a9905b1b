// Package figures holds what bench/cmd/pluginbench prints and
// bench/cmd/benchreport reads, so the two programs share one definition.
package figures

// Plugins is pluginbench's JSON. Times are microseconds unless the name
// says ms; memory is MiB.
type Plugins struct {
	Calls                int     `json:"calls"`
	NullP50Us            float64 `json:"null_p50_us"`
	NullP99Us            float64 `json:"null_p99_us"`
	NullNoDeadlineP50Us  float64 `json:"null_no_deadline_p50_us"`
	NullNoDeadlineP99Us  float64 `json:"null_no_deadline_p99_us"`
	RedisPluginP50Us     float64 `json:"redis_plugin_get_p50_us"`
	RedisNativeP50Us     float64 `json:"redis_native_evalsha_p50_us"`
	RedisPluginP99Us     float64 `json:"redis_plugin_get_p99_us"`
	RedisNativeP99Us     float64 `json:"redis_native_evalsha_p99_us"`
	RedisNoDeadlineP50Us float64 `json:"redis_plugin_get_no_deadline_p50_us"`
	RedisNoDeadlineP99Us float64 `json:"redis_plugin_get_no_deadline_p99_us"`
	ReloadWarmMs         float64 `json:"reload_warm_ms"` // all three slots, median
	ReloadRuns           int     `json:"reload_runs"`
	ColdStartMs          float64 `json:"cold_start_ms"` // 4 plugins, empty compilation cache
	WarmStartMs          float64 `json:"warm_start_ms"` // 4 plugins, populated cache
	InstanceMemMiB       float64 `json:"instance_linear_memory_mib"`
	PluginRSSMiB         float64 `json:"plugin_rss_mib"` // RSS per plugin loaded alone (own runtime, compiled code, one instance)
	HostRSSMiB           float64 `json:"host_rss_mib"`   // RSS of a Host with the three default plugins
}
