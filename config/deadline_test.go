package config

import (
	"strings"
	"testing"
)

// plugins.limits.enforce_deadline defaults to true (the safe choice) and
// can be turned off from YAML or the environment; a bad value is an
// error naming the key.
func TestEnforceDeadline(t *testing.T) {
	cases := []struct {
		name, yaml string
		env        []string
		want       bool
	}{
		{"default", "", nil, true},
		{"yaml off", "plugins: {limits: {enforce_deadline: false}}", nil, false},
		{"env off", "", []string{"WASMHLS_PLUGINS_LIMITS_ENFORCE_DEADLINE=false"}, false},
		{"env on over yaml off", "plugins: {limits: {enforce_deadline: false}}", []string{"WASMHLS_PLUGINS_LIMITS_ENFORCE_DEADLINE=1"}, true},
		{"other limits keep it", "plugins: {limits: {pool_size: 2}}", nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.yaml), append([]string{"POD_NAME=p"}, tc.env...))
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Plugins.Limits.EnforceDeadline; got != tc.want {
				t.Fatalf("enforce_deadline = %v, want %v", got, tc.want)
			}
		})
	}
	_, err := Parse(nil, []string{"POD_NAME=p", "WASMHLS_PLUGINS_LIMITS_ENFORCE_DEADLINE=maybe"})
	if err == nil || !strings.Contains(err.Error(), "plugins.limits.enforce_deadline") {
		t.Fatalf("bad env value: err = %v, want one naming plugins.limits.enforce_deadline", err)
	}
	repo, err := Load("../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !repo.Plugins.Limits.EnforceDeadline {
		t.Fatal("config.yaml turns the call deadline off; the shipped default must keep it on")
	}
}
