package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func noEnv(string) (string, bool) { return "", false }

func TestExampleConfigLoads(t *testing.T) {
	cfg, err := LoadConfig("../../configs/simgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Database.Path, "/var/lib/simgate/simgate.db"; got != want {
		t.Fatalf("database.path = %q, want %q", got, want)
	}
	if got, want := len(cfg.Modems), 1; got != want {
		t.Fatalf("modems = %d, want %d", got, want)
	}
	if got, want := cfg.Modems[0].SubmitTimeout, 60*time.Second; got != want {
		t.Fatalf("submit_timeout = %v, want %v", got, want)
	}
}

// TestExampleConfigMatchesDefaults keeps the documented example and
// DefaultConfig in step for every section but the modems.
func TestExampleConfigMatchesDefaults(t *testing.T) {
	cfg, err := LoadConfig("../../configs/simgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	def := DefaultConfig()
	cfg.Database.Path, def.Database.Path = "", ""
	cfg.Modems = nil
	if got, want := dump(t, cfg), dump(t, def); got != want {
		t.Fatalf("configs/simgate.yaml and DefaultConfig differ:\n%s\nvs\n%s", got, want)
	}
}

func dump(t *testing.T, cfg *Config) string {
	t.Helper()
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEmptyConfigUsesDefaults(t *testing.T) {
	cfg, err := ParseConfig("empty.yaml", nil, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.HTTP.Listen, "127.0.0.1:8080"; got != want {
		t.Fatalf("listen = %q, want %q", got, want)
	}
	// The documented place (configs/simgate.yaml), not the working
	// directory, where a daemon started elsewhere would make a new one.
	if got, want := cfg.Database.Path, "/var/lib/simgate/simgate.db"; got != want {
		t.Fatalf("database.path = %q, want %q", got, want)
	}
}

// check-config reports what is valid but likely wrong: an API open to the
// network without TLS, and an empty country allow-list; and refuses two
// modems on one device, a port out of range, a map where a list belongs and
// a key given twice, each with its file, line and key.
func TestCheckConfigWarnsAndRefuses(t *testing.T) {
	dir := t.TempDir()
	write := func(name, yaml string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	code, out, _ := runCLI(t, "check-config", write("open.yaml", "http:\n  listen: 0.0.0.0:8080\n"))
	if code != 0 || !strings.Contains(out, "warning: http.listen") || !strings.Contains(out, "warning: verify.allowed_countries") {
		t.Fatalf("check-config: exit %d, %q", code, out)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"modems:\n  - {name: a, device: /dev/ttyUSB0}\n  - {name: b, device: /dev/ttyUSB0}\n", "bad.yaml:3: modems[1].device: /dev/ttyUSB0 is the device of modems[0] too"},
		{"http:\n  listen: 127.0.0.1:70000\n", "bad.yaml:2: http.listen: the port must be"},
		{"modems:\n  name: m0\n", "bad.yaml:2: modems: want a list, got a mapping"},
		{"queue:\n  lease: 1m\n  lease: 2m\n", "bad.yaml:3: queue.lease: given twice (first at line 2)"},
		{"verify:\n  templates: {en: a, en: b}\n", "bad.yaml:2: verify.templates.en: given twice"},
	} {
		if _, err := ParseConfig("bad.yaml", []byte(tc.yaml), noEnv); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		name, yaml string
		want       []string // substrings of the error
	}{
		{"misspelt key", "database:\n  path: x.db\n  synchronus: FULL\n",
			[]string{"bad.yaml:3:", "database.synchronus", "unknown key", `did you mean "synchronous"`}},
		{"misspelt top-level key", "modem:\n  - name: a\n",
			[]string{"bad.yaml:1:", "modem:", "unknown key", `"modems"`}},
		{"bad duration", "queue:\n  lease: 10 minutes\n",
			[]string{"bad.yaml:2:", "queue.lease", "want a duration", `"10 minutes"`}},
		{"wrong type", "queue:\n  max_attempts: many\n",
			[]string{"bad.yaml:2:", "queue.max_attempts", "want a whole number", `"many"`}},
		{"wrong type in a list item", "modems:\n  - name: m0\n    device: /dev/ttyUSB0\n    per_day: lots\n",
			[]string{"bad.yaml:4:", "modems[0].per_day", "whole number"}},
		{"database driver", "database:\n  driver: mysql\n",
			[]string{"bad.yaml:2:", "database.driver", "sqlite or postgres"}},
		{"postgres without a dsn", "database:\n  driver: postgres\n",
			[]string{"database.dsn", "must name the PostgreSQL database"}},
		{"node id", "node:\n  id: \"gw 1\"\n",
			[]string{"bad.yaml:2:", "node.id", "letters, digits"}},
		{"invalid value", "verify:\n  ttl: 48h\n",
			[]string{"bad.yaml:2:", "verify.ttl", "at most verify.max_ttl (10m0s)"}},
		{"ttl over max_ttl", "verify:\n  max_ttl: 15m\n  ttl: 20m\n",
			[]string{"bad.yaml:3:", "verify.ttl", "verify.max_ttl (15m0s)"}},
		{"max_ttl", "verify:\n  max_ttl: 25h\n",
			[]string{"bad.yaml:2:", "verify.max_ttl", "between 1m and 24h"}},
		{"short code", "verify:\n  code_length: 4\n",
			[]string{"bad.yaml:2:", "verify.code_length", "verify.min_code_length (6)"}},
		{"min_code_length", "verify:\n  min_code_length: 3\n",
			[]string{"bad.yaml:2:", "verify.min_code_length", "4 to 10"}},
		{"app name text", "verify:\n  app_name: \"Shop\\nYour code is 0000\"\n",
			[]string{"bad.yaml:2:", "verify.app_name", "U+000A"}},
		{"app names key", "verify:\n  app_names:\n    \"my shop\": Shop\n",
			[]string{"bad.yaml:3:", "verify.app_names.my shop", "letters, digits"}},
		{"app names value", "verify:\n  app_names:\n    shop: \"Shop\\u202e\"\n",
			[]string{"bad.yaml:3:", "verify.app_names.shop", "U+202E"}},
		{"invalid enum", "database:\n  synchronous: FAST\n",
			[]string{"bad.yaml:2:", "database.synchronous", "FULL or NORMAL"}},
		{"modem without device", "modems:\n  - name: m0\n",
			[]string{"bad.yaml:2:", "modems[0]", "set device"}},
		{"duplicate modem name", "modems:\n  - {name: m0, device: /dev/a}\n  - {name: m0, device: /dev/b}\n",
			[]string{"bad.yaml:3:", "modems[1].name", "used by another"}},
		{"unset env", "verify:\n  secret: ${SIMGATE_TEST_NOT_SET}\n",
			[]string{"bad.yaml:2:", "verify.secret", "SIMGATE_TEST_NOT_SET is not set"}},
		{"webhook event type", "webhooks:\n  endpoints:\n    - {name: ops, url: https://x.example/h, secret: 0123456789abcdef, events: [message.queued]}\n",
			[]string{"bad.yaml:3:", "webhooks.endpoints[0].events[0]", `unknown event type "message.queued"`}},
		{"webhook secret", "webhooks:\n  endpoints:\n    - name: ops\n      url: https://x.example/h\n      secret: short\n      events: [modem.down]\n",
			[]string{"bad.yaml:5:", "webhooks.endpoints[0].secret", "at least 16"}},
		{"webhook url", "webhooks:\n  endpoints:\n    - {name: ops, url: ftp://x.example/h, secret: 0123456789abcdef, events: [modem.down]}\n",
			[]string{"webhooks.endpoints[0].url", "http:// or https://"}},
		{"webhook retry period", "webhooks:\n  retry_for: 1h\n",
			[]string{"bad.yaml:2:", "webhooks.retry_for", "at least 24h"}},
		{"console session", "console:\n  session_ttl: 10s\n",
			[]string{"bad.yaml:2:", "console.session_ttl", "between 1m"}},
		{"calls", "modems:\n  - name: m0\n    device: /dev/a\n    calls: answer\n",
			[]string{"bad.yaml:4:", "modems[0].calls", `"reject" or "ignore"`}},
		{"modem number not E.164", "modems:\n  - name: m0\n    device: /dev/a\n    number: \"0170 1234567\"\n",
			[]string{"bad.yaml:4:", "modems[0].number", "E.164", `"0170 1234567"`}},
		{"modem number twice", "modems:\n  - {name: m0, device: /dev/a, number: '+4917012345678'}\n  - {name: m1, device: /dev/b, number: '+4917012345678'}\n",
			[]string{"bad.yaml:3:", "modems[1].number", "number of modems[0] too"}},
		{"balance without amount group", "modems:\n  - name: m0\n    device: /dev/a\n    balance: {ussd: '*100#', every: 6h, pattern: 'balance ([0-9.]+)'}\n",
			[]string{"modems[0].balance.pattern", "group named amount"}},
		{"balance too often", "modems:\n  - name: m0\n    device: /dev/a\n    balance: {ussd: '*100#', every: 10s, pattern: '(?P<amount>[0-9.]+)'}\n",
			[]string{"modems[0].balance.every", "at least 1m"}},
		{"resets per day", "pool:\n  max_resets_per_day: 0\n",
			[]string{"bad.yaml:2:", "pool.max_resets_per_day"}},
		{"syntax", "http:\n  listen: [\n",
			[]string{"bad.yaml:", "line"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig("bad.yaml", []byte(tt.yaml), noEnv)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestConfigVerifyAllowsWeakerByChoice: shorter codes, longer lifetimes and
// app names are the operator's to configure.
func TestConfigVerifyAllowsWeakerByChoice(t *testing.T) {
	cfg, err := ParseConfig("ok.yaml", []byte("verify:\n  min_code_length: 4\n  code_length: 4\n  max_ttl: 1h\n  ttl: 30m\n"+
		"  app_names: {shop: \"Acme Shop\", bank-eu: \"Acme Bank\"}\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	v := cfg.Verify
	if v.MinCodeLength != 4 || v.CodeLength != 4 || v.MaxTTL != time.Hour || v.TTL != 30*time.Minute || v.AppNames["bank-eu"] != "Acme Bank" {
		t.Fatalf("verify = %+v", v)
	}
	def := DefaultConfig().Verify
	if got, want := def.MinCodeLength, 6; got != want {
		t.Fatalf("default min_code_length = %d, want %d", got, want)
	}
	if got, want := def.MaxTTL, 10*time.Minute; got != want {
		t.Fatalf("default max_ttl = %s, want %s", got, want)
	}
}

func TestConfigReportsEveryProblem(t *testing.T) {
	_, err := ParseConfig("bad.yaml", []byte("http:\n  listen: nope\nverify:\n  code_length: 3\n"), noEnv)
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *ConfigError", err)
	}
	if got, want := len(ce.Problems), 2; got != want {
		t.Fatalf("problems = %d (%v), want %d", got, err, want)
	}
	if got, want := ce.Problems[0].Line, 2; got != want {
		t.Fatalf("first problem on line %d, want %d", got, want)
	}
}

func TestConfigEnvExpansion(t *testing.T) {
	env := map[string]string{"SECRET": "0123456789abcdef0123456789abcdef: {not: yaml}", "BURST": "7"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := ParseConfig("env.yaml", []byte(
		"verify:\n  secret: ${SECRET}\nlimits:\n  per_ip:\n    rate: 1\n    burst: ${BURST}\nmodems:\n  - {name: m0, device: /dev/x, pin: \"${PIN:-1234}\"}\n"), lookup)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Verify.Secret, env["SECRET"]; got != want {
		t.Fatalf("secret = %q, want %q", got, want)
	}
	if got, want := cfg.Limits.PerIP.Burst, 7; got != want {
		t.Fatalf("burst = %d, want %d", got, want)
	}
	if got, want := cfg.Modems[0].PIN, "1234"; got != want {
		t.Fatalf("pin = %q, want %q", got, want)
	}
}

func TestConfigErrorHidesPIN(t *testing.T) {
	_, err := ParseConfig("bad.yaml", []byte("modems:\n  - {name: m0, device: /dev/x, pin: \"98x7\"}\n"), noEnv)
	if err == nil || strings.Contains(err.Error(), "98x7") {
		t.Fatalf("error %v must reject the PIN without echoing it", err)
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	_, err := LoadConfig(t.TempDir() + "/nope.yaml")
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("error %v, want not exist", err)
	}
}

// A host is named by its host name unless node.id says otherwise; the name
// goes into the dispatcher's leases.
func TestNodeID(t *testing.T) {
	host, err := os.Hostname()
	if err != nil || !validNodeID.MatchString(host) {
		host = "local"
	}
	if got := DefaultConfig().Node.ID; got != host {
		t.Fatalf("default node.id = %q, want the host name %q", got, host)
	}
	path := filepath.Join(t.TempDir(), "node.yaml")
	if err := os.WriteFile(path, []byte("node:\n  id: gw-2.example\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil || cfg.Node.ID != "gw-2.example" {
		t.Fatalf("node.id from the file: %+v, %v", cfg.Node, err)
	}
}
