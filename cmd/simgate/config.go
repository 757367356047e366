package main

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/verify"
	"github.com/simgate/simgate/webhook"
)

// Config is the whole configuration file. It stays in cmd, so that no
// package depends on the file's layout: components receive the fields they
// need through their constructors.
// configs/simgate.yaml documents every key; keep the two in step.
type Config struct {
	Node     NodeConfig     `yaml:"node"`
	Database DatabaseConfig `yaml:"database"`
	HTTP     HTTPConfig     `yaml:"http"`
	Log      LogConfig      `yaml:"log"`
	Modems   []ModemConfig  `yaml:"modems"`
	Pool     PoolConfig     `yaml:"pool"`
	Queue    QueueConfig    `yaml:"queue"`
	Verify   VerifyConfig   `yaml:"verify"`
	Limits   LimitsConfig   `yaml:"limits"`
	Metrics  MetricsConfig  `yaml:"metrics"`
	Console  ConsoleConfig  `yaml:"console"`
	Webhooks WebhooksConfig `yaml:"webhooks"`
}

// NodeConfig names this gateway host. Its queue's claims of messages carry
// the name (a lease), so that a host that starts again recovers what it
// left in sending, and only that, while other hosts on one database keep
// theirs.
type NodeConfig struct {
	// ID is the host's name; default the machine's host name.
	ID string `yaml:"id"`
}

// MetricsConfig is the Prometheus endpoint, /metrics on the API listener.
type MetricsConfig struct {
	Enabled bool `yaml:"enabled"`
	// Token, when set, is required as "Authorization: Bearer <token>".
	Token string `yaml:"token"`
}

// ConsoleConfig is the admin console, /console/ on the API listener.
type ConsoleConfig struct {
	Enabled    bool          `yaml:"enabled"`
	SessionTTL time.Duration `yaml:"session_ttl"`
	Refresh    time.Duration `yaml:"refresh"`
}

// WebhooksConfig is the event delivery to HTTP endpoints.
type WebhooksConfig struct {
	Timeout    time.Duration    `yaml:"timeout"`
	MinBackoff time.Duration    `yaml:"min_backoff"`
	MaxBackoff time.Duration    `yaml:"max_backoff"`
	RetryFor   time.Duration    `yaml:"retry_for"`
	Retention  time.Duration    `yaml:"retention"`
	Interval   time.Duration    `yaml:"interval"`
	Endpoints  []EndpointConfig `yaml:"endpoints"`
}

// EndpointConfig is one webhook receiver.
type EndpointConfig struct {
	Name   string   `yaml:"name"`
	URL    string   `yaml:"url"`
	Secret string   `yaml:"secret"`
	Events []string `yaml:"events"`
}

// DatabaseConfig is the SQLite store.
type DatabaseConfig struct {
	// Driver is sqlite (the default: one file, one host) or postgres
	// (several hosts on one database).
	Driver string `yaml:"driver"`
	// Path and Synchronous are the SQLite file's.
	Path        string `yaml:"path"`
	Synchronous string `yaml:"synchronous"`
	// DSN is the PostgreSQL connection string (postgres://...); put its
	// password in the environment with ${NAME}.
	DSN string `yaml:"dsn"`
}

// HTTPConfig is the API listener.
type HTTPConfig struct {
	Listen            string        `yaml:"listen"`
	TLSCert           string        `yaml:"tls_cert"`
	TLSKey            string        `yaml:"tls_key"`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	ShutdownTimeout   time.Duration `yaml:"shutdown_timeout"`
}

// LogConfig selects the slog handler.
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// ModemConfig is one modem. It is found by Device (a path or a glob) or, when
// IMEI or ICCID is set, by probing candidate ports for that identity, so a
// USB reset that renames the tty does not lose it.
type ModemConfig struct {
	Name   string `yaml:"name"`
	Device string `yaml:"device"`
	IMEI   string `yaml:"imei"`
	ICCID  string `yaml:"iccid"`
	Baud   int    `yaml:"baud"`
	PIN    string `yaml:"pin"`
	SMSC   string `yaml:"smsc"`
	// Number is the SIM's own number in E.164, which missed-call
	// verifications show to the user to call. Empty: read from the SIM
	// (AT+CNUM), which most SIMs cannot tell.
	Number        string        `yaml:"number"`
	SubmitTimeout time.Duration `yaml:"submit_timeout"`
	Validity      time.Duration `yaml:"validity"`
	Prefixes      []string      `yaml:"prefixes"`
	PerMinute     int           `yaml:"per_minute"`
	PerHour       int           `yaml:"per_hour"`
	PerDay        int           `yaml:"per_day"`
	Disabled      bool          `yaml:"disabled"`
	// Calls is what happens to incoming calls: "reject" (default) or
	// "ignore" (let them ring); both record the call.
	Calls string `yaml:"calls"`
	// Balance reads a prepaid SIM's balance by USSD.
	Balance *BalanceConfig `yaml:"balance"`
	// ResetCommand is the soft reset of a modem that stopped answering
	// (default AT+CFUN=1,1); USBReset allows a USB reset after it.
	ResetCommand string `yaml:"reset_command"`
	USBReset     bool   `yaml:"usb_reset"`
}

// BalanceConfig is the balance watch of one modem.
type BalanceConfig struct {
	USSD    string        `yaml:"ussd"`
	Every   time.Duration `yaml:"every"`
	Pattern string        `yaml:"pattern"`
	Low     *float64      `yaml:"low"`
}

// PoolConfig is how the modems are driven as a whole.
type PoolConfig struct {
	MinReadyModems int           `yaml:"min_ready_modems"`
	ProbeInterval  time.Duration `yaml:"probe_interval"`
	CommandTimeout time.Duration `yaml:"command_timeout"`
	// USSDTimeout is how long a USSD request waits for the network.
	USSDTimeout time.Duration `yaml:"ussd_timeout"`
	// MaxResetsPerDay: a modem that needed more resets in a day is
	// reported degraded.
	MaxResetsPerDay int `yaml:"max_resets_per_day"`
}

// QueueConfig is the dispatcher.
type QueueConfig struct {
	MaxAttempts   int           `yaml:"max_attempts"`
	RetryBackoff  time.Duration `yaml:"retry_backoff"`
	MaxBackoff    time.Duration `yaml:"max_backoff"`
	SweepInterval time.Duration `yaml:"sweep_interval"`
	Lease         time.Duration `yaml:"lease"`
	ResendUnknown bool          `yaml:"resend_unknown"`
	ReportWindow  time.Duration `yaml:"report_window"`
	DefaultExpiry time.Duration `yaml:"default_expiry"`
	// MaxExpiry is the furthest ahead a request's expires_at may be.
	MaxExpiry time.Duration `yaml:"max_expiry"`
}

// VerifyConfig is the OTP service.
type VerifyConfig struct {
	Secret  string `yaml:"secret"`
	AppName string `yaml:"app_name"`
	// AppNames are the names a request may pick by key (app_name); a
	// request cannot give text of its own.
	AppNames map[string]string `yaml:"app_names"`
	// MinCodeLength is the fewest digits a request may ask for.
	MinCodeLength int `yaml:"min_code_length"`
	CodeLength    int `yaml:"code_length"`
	// MaxTTL is the longest lifetime a request may ask for.
	MaxTTL           time.Duration     `yaml:"max_ttl"`
	TTL              time.Duration     `yaml:"ttl"`
	MaxChecks        int               `yaml:"max_checks"`
	MaxSends         int               `yaml:"max_sends"`
	SendWindow       time.Duration     `yaml:"send_window"`
	FailureCap       int               `yaml:"failure_cap"`
	NotifyOwner      bool              `yaml:"notify_owner"`
	DefaultLocale    string            `yaml:"default_locale"`
	Templates        map[string]string `yaml:"templates"`
	NotifyTemplate   string            `yaml:"notify_template"`
	AllowedCountries []string          `yaml:"allowed_countries"`
	// AllowedNumberTypes are the number types besides mobile that codes and
	// messages may go to (SMS pumping uses premium, personal, pager and
	// VoIP numbers); empty: mobile only.
	AllowedNumberTypes []string `yaml:"allowed_number_types"`
	DefaultRegion      string   `yaml:"default_region"`
	PrefixVelocityLen  int      `yaml:"prefix_velocity_length"`
	PrefixVelocityHour int      `yaml:"prefix_velocity_per_hour"`
}

// LimitsConfig are the abuse controls shared by the API routes.
type LimitsConfig struct {
	PerAPIKey     RateConfig `yaml:"per_api_key"`
	PerIP         RateConfig `yaml:"per_ip"`
	PerNumber     RateConfig `yaml:"per_number"`
	GlobalPerHour int        `yaml:"global_sms_per_hour"`
	GlobalPerDay  int        `yaml:"global_sms_per_day"`
}

// RateConfig is a token bucket: Rate tokens per second, up to Burst.
type RateConfig struct {
	Rate  float64 `yaml:"rate"`
	Burst int     `yaml:"burst"`
}

// defaultNodeID is the machine's host name, or "local" when it has none
// that node.id takes.
func defaultNodeID() string {
	if h, err := os.Hostname(); err == nil && validNodeID.MatchString(h) {
		return h
	}
	return "local"
}

// DefaultConfig returns the configuration used for keys a file leaves out.
// It works out of the box on one machine: database in the working directory,
// API on loopback, no modems until some are configured.
func DefaultConfig() *Config {
	return &Config{
		Node:     NodeConfig{ID: defaultNodeID()},
		Database: DatabaseConfig{Driver: driverSQLite, Path: "/var/lib/simgate/simgate.db", Synchronous: "FULL"},
		HTTP: HTTPConfig{
			Listen:            "127.0.0.1:8080",
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      15 * time.Second,
			IdleTimeout:       60 * time.Second,
			ShutdownTimeout:   10 * time.Second,
		},
		Log: LogConfig{Level: "info", Format: "text"},
		Pool: PoolConfig{MinReadyModems: 1, ProbeInterval: 30 * time.Second, CommandTimeout: 5 * time.Second,
			USSDTimeout: 30 * time.Second, MaxResetsPerDay: 3},
		Queue: QueueConfig{
			MaxAttempts:   5,
			RetryBackoff:  10 * time.Second,
			MaxBackoff:    10 * time.Minute,
			SweepInterval: 5 * time.Second,
			Lease:         30 * time.Second,
			ReportWindow:  72 * time.Hour,
			DefaultExpiry: 24 * time.Hour,
			MaxExpiry:     7 * 24 * time.Hour,
		},
		Verify: VerifyConfig{
			AppName:            "simgate",
			MinCodeLength:      6,
			CodeLength:         6,
			MaxTTL:             10 * time.Minute,
			TTL:                10 * time.Minute,
			MaxChecks:          5,
			MaxSends:           5,
			SendWindow:         10 * time.Minute,
			FailureCap:         100,
			DefaultLocale:      "en",
			Templates:          map[string]string{"en": verify.DefaultTemplate},
			NotifyTemplate:     verify.DefaultNotifyTemplate,
			PrefixVelocityLen:  7,
			PrefixVelocityHour: 50,
		},
		Limits: LimitsConfig{
			PerAPIKey:     RateConfig{Rate: 50, Burst: 100},
			PerIP:         RateConfig{Rate: 20, Burst: 40},
			PerNumber:     RateConfig{Rate: 0.1, Burst: 5},
			GlobalPerHour: 1000,
			GlobalPerDay:  10000,
		},
		Metrics: MetricsConfig{Enabled: true},
		Console: ConsoleConfig{Enabled: true, SessionTTL: 12 * time.Hour, Refresh: 5 * time.Second},
		Webhooks: WebhooksConfig{
			Timeout:    10 * time.Second,
			MinBackoff: 30 * time.Second,
			MaxBackoff: time.Hour,
			RetryFor:   72 * time.Hour,
			Retention:  7 * 24 * time.Hour,
			Interval:   time.Second,
		},
	}
}

// modemDefaults fills what a modem entry leaves out.
func (m *ModemConfig) applyDefaults() {
	if m.Baud == 0 {
		m.Baud = 115200
	}
	if m.SubmitTimeout == 0 {
		m.SubmitTimeout = 60 * time.Second
	}
	if m.Validity == 0 {
		m.Validity = 24 * time.Hour
	}
}

// LoadConfig reads, expands and validates the file at path.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read config: %w", err)
	}
	return ParseConfig(path, data, os.LookupEnv)
}

// ConfigError lists every problem found in a configuration file, each with
// the file, line and key.
type ConfigError struct {
	File     string
	Problems []ConfigProblem
}

// ConfigProblem is one problem at one key.
type ConfigProblem struct {
	Line int
	Key  string // dotted path, e.g. "modems[0].per_day"
	Msg  string
}

// Error implements error: one line per problem.
func (e *ConfigError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s:%d: %s: %s", e.File, p.Line, p.Key, p.Msg)
	}
	return b.String()
}

// ParseConfig decodes data strictly into a Config over the defaults. Every
// unknown key, wrong type and invalid value is reported with its line and
// key. ${NAME} in a value is replaced by the environment variable NAME, which
// must be set (use ${NAME:-default} for a fallback); the expansion happens in
// the parsed values, so a secret with YAML syntax in it cannot change the
// document's structure.
func ParseConfig(file string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	cfg := DefaultConfig()
	lines, err := decodeYAML(file, data, lookupEnv, cfg)
	if err != nil {
		return nil, err
	}
	for i := range cfg.Modems {
		cfg.Modems[i].applyDefaults()
	}
	ce := &ConfigError{File: file, Problems: cfg.validate(lines)}
	return cfg, ce.orNil()
}

// decodeYAML decodes data strictly into v (a pointer to a struct holding
// the defaults) and returns the line of every key it set, for validation
// messages. Unknown keys, unset environment variables and wrong types are
// reported together in a *ConfigError.
func decodeYAML(file string, data []byte, lookupEnv func(string) (string, bool), v any) (map[string]int, error) {
	lines := map[string]int{} // dotted key -> line
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %s", file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Content) == 0 { // empty file: all defaults
		return lines, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: the file must be a mapping of keys", file, root.Line)
	}
	ce := &ConfigError{File: file}
	checkKeys(root, reflect.TypeOf(v), "", lines, ce)
	expandEnv(root, "", lookupEnv, ce)
	if len(ce.Problems) > 0 {
		return nil, ce.orNil()
	}
	if err := root.Decode(v); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, fmt.Errorf("%s: %v", file, err)
		}
		for _, msg := range te.Errors {
			ce.Problems = append(ce.Problems, typeProblem(msg, lines))
		}
		return nil, ce.orNil()
	}
	return lines, nil
}

func (e *ConfigError) orNil() error {
	if len(e.Problems) == 0 {
		return nil
	}
	sort.SliceStable(e.Problems, func(i, j int) bool { return e.Problems[i].Line < e.Problems[j].Line })
	return e
}

// checkKeys walks the YAML mapping n against struct type t, reporting keys
// that t has no field for and recording the line of every key it knows.
func checkKeys(n *yaml.Node, t reflect.Type, prefix string, lines map[string]int, ce *ConfigError) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	want := func(what string) {
		ce.Problems = append(ce.Problems, ConfigProblem{n.Line, orRoot(prefix), "want " + what + ", got " + nodeKind(n)})
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if !(n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
				want("a mapping of keys")
			}
			return
		}
		fields := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			fields[name] = t.Field(i).Type
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := join(prefix, k.Value)
			if first, dup := seen[k.Value]; dup {
				ce.Problems = append(ce.Problems, ConfigProblem{k.Line, key, fmt.Sprintf("given twice (first at line %d)", first)})
				continue
			}
			seen[k.Value] = k.Line
			ft, ok := fields[k.Value]
			if !ok {
				ce.Problems = append(ce.Problems, ConfigProblem{k.Line, key, "unknown key" + suggest(k.Value, fields)})
				continue
			}
			lines[key] = v.Line
			checkKeys(v, ft, key, lines, ce)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			if !(n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
				want("a list")
			}
			return
		}
		for i, v := range n.Content {
			key := fmt.Sprintf("%s[%d]", prefix, i)
			lines[key] = v.Line
			checkKeys(v, t.Elem(), key, lines, ce)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			if !(n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
				want("a mapping")
			}
			return
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if first, dup := seen[k.Value]; dup {
				ce.Problems = append(ce.Problems, ConfigProblem{k.Line, join(prefix, k.Value), fmt.Sprintf("given twice (first at line %d)", first)})
				continue
			}
			seen[k.Value] = k.Line
			lines[join(prefix, k.Value)] = n.Content[i+1].Line
		}
	}
}

// nodeKind names what a YAML node is, for errors.
func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping of keys"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("the value %q", n.Value)
}

func orRoot(key string) string {
	if key == "" {
		return "(the file)"
	}
	return key
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// suggest names the known key closest to a misspelt one.
func suggest(got string, fields map[string]reflect.Type) string {
	best, bestDist := "", 3
	for name := range fields {
		if d := editDistance(got, name); d < bestDist || (d == bestDist && name < best) {
			best, bestDist = name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}`)

// expandEnv replaces ${NAME} and ${NAME:-default} in every scalar value.
func expandEnv(n *yaml.Node, key string, lookupEnv func(string) (string, bool), ce *ConfigError) {
	switch n.Kind {
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return
		}
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
			m := envRef.FindStringSubmatch(ref)
			if v, ok := lookupEnv(m[1]); ok {
				return v
			}
			if m[2] != "" {
				return m[2][2:]
			}
			ce.Problems = append(ce.Problems, ConfigProblem{n.Line, key, fmt.Sprintf("environment variable %s is not set", m[1])})
			return ""
		})
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
			n.Tag = "" // resolve the expanded text anew: a plain ${PORT} may be an int
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			expandEnv(n.Content[i+1], join(key, n.Content[i].Value), lookupEnv, ce)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			expandEnv(c, fmt.Sprintf("%s[%d]", key, i), lookupEnv, ce)
		}
	}
}

var typeErrLine = regexp.MustCompile(`^line (\d+): cannot unmarshal !!(\w+) ` + "`" + `(.*)` + "`" + ` into (.+)$`)

// typeProblem turns one of yaml's "line N: cannot unmarshal ..." messages
// into a problem that names the key and says what was wanted.
func typeProblem(msg string, lines map[string]int) ConfigProblem {
	m := typeErrLine.FindStringSubmatch(msg)
	if m == nil {
		return ConfigProblem{Key: "?", Msg: msg}
	}
	line, _ := strconv.Atoi(m[1])
	key := "?"
	for k, l := range lines { // the deepest key on that line
		if l == line && (key == "?" || len(k) > len(key)) {
			key = k
		}
	}
	want := map[string]string{
		"time.Duration": "a duration such as 30s, 5m or 1h",
		"int":           "a whole number",
		"float64":       "a number",
		"bool":          "true or false",
		"string":        "a string",
	}[m[4]]
	if want == "" {
		want = strings.TrimPrefix(m[4], "main.")
		if strings.HasPrefix(want, "[]") {
			want = "a list"
		} else if strings.HasPrefix(want, "map[") || strings.HasSuffix(want, "Config") {
			want = "a mapping of keys"
		}
	}
	return ConfigProblem{line, key, fmt.Sprintf("want %s, got %q", want, m[3])}
}

// validate checks values that decode but make no sense. lines gives the line
// of each key in the file; keys that are absent there were defaults.
func (c *Config) validate(lines map[string]int) []ConfigProblem {
	var ps []ConfigProblem
	bad := func(key, format string, args ...any) {
		ps = append(ps, ConfigProblem{lines[key], key, fmt.Sprintf(format, args...)})
	}
	positive := func(key string, d time.Duration) {
		if d <= 0 {
			bad(key, "must be a positive duration, got %s", d)
		}
	}
	atLeast := func(key string, v, lo int) {
		if v < lo {
			bad(key, "must be at least %d, got %d", lo, v)
		}
	}

	if !validNodeID.MatchString(c.Node.ID) {
		bad("node.id", "must be 1 to 64 letters, digits, '.', '-' or '_', got %q", c.Node.ID)
	}
	switch c.Database.Driver {
	case driverSQLite:
		if c.Database.Path == "" {
			bad("database.path", "must not be empty")
		}
	case driverPostgres:
		if c.Database.DSN == "" {
			bad("database.dsn", "must name the PostgreSQL database, such as postgres://simgate@db.example/simgate, when database.driver is postgres")
		}
	default:
		bad("database.driver", "must be sqlite or postgres, got %q", c.Database.Driver)
	}
	switch strings.ToUpper(c.Database.Synchronous) {
	case "FULL", "NORMAL":
		c.Database.Synchronous = strings.ToUpper(c.Database.Synchronous)
	default:
		bad("database.synchronous", "must be FULL or NORMAL, got %q", c.Database.Synchronous)
	}

	if _, port, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
		bad("http.listen", "must be host:port, such as 127.0.0.1:8080: %v", err)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		bad("http.listen", "the port must be a number from 1 to 65535 (0: any free port), got %q", port)
	}
	if (c.HTTP.TLSCert == "") != (c.HTTP.TLSKey == "") {
		bad("http.tls_cert", "tls_cert and tls_key go together: set both or neither")
	}
	positive("http.read_header_timeout", c.HTTP.ReadHeaderTimeout)
	positive("http.read_timeout", c.HTTP.ReadTimeout)
	positive("http.write_timeout", c.HTTP.WriteTimeout)
	positive("http.idle_timeout", c.HTTP.IdleTimeout)
	positive("http.shutdown_timeout", c.HTTP.ShutdownTimeout)

	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "must be text or json, got %q", c.Log.Format)
	}

	names := map[string]bool{}
	devices := map[string]string{} // device -> the modem key that has it
	numbers := map[string]string{} // number -> the modem key that has it
	for i, m := range c.Modems {
		k := fmt.Sprintf("modems[%d]", i)
		switch {
		case m.Name == "":
			bad(k, "name must be set")
		case !validName.MatchString(m.Name):
			bad(k+".name", "must be letters, digits, '-' or '_', got %q", m.Name)
		case names[m.Name]:
			bad(k+".name", "%q is used by another modem", m.Name)
		}
		names[m.Name] = true
		if m.Device == "" && m.IMEI == "" && m.ICCID == "" {
			bad(k, "set device (a path or glob), imei or iccid so the modem can be found")
		}
		if m.Device != "" {
			if _, err := filepath.Match(m.Device, ""); err != nil {
				bad(k+".device", "bad glob %q: %v", m.Device, err)
			}
			if other, dup := devices[m.Device]; dup && !strings.ContainsAny(m.Device, "*?[") {
				bad(k+".device", "%s is the device of %s too: one port takes one modem", m.Device, other)
			}
			devices[m.Device] = k
		}
		if m.IMEI != "" && !digits(m.IMEI, 14, 16) {
			bad(k+".imei", "must be 14 to 16 digits, got %q", m.IMEI)
		}
		if m.ICCID != "" && !digits(m.ICCID, 18, 22) {
			bad(k+".iccid", "must be 18 to 22 digits, got %q", m.ICCID)
		}
		if m.PIN != "" && !digits(m.PIN, 4, 8) {
			bad(k+".pin", "must be 4 to 8 digits") // the PIN itself is not echoed
		}
		if m.Number != "" {
			if !simgate.IsE164(m.Number) {
				bad(k+".number", "must be the SIM's own number in E.164 (+, country code, number; no spaces), such as +4917012345678, got %q", m.Number)
			} else if other, dup := numbers[m.Number]; dup {
				bad(k+".number", "%s is the number of %s too: each SIM has its own", m.Number, other)
			}
			numbers[m.Number] = k
		}
		if m.SMSC != "" && !simgate.IsE164(m.SMSC) {
			bad(k+".smsc", "must be an international number such as +4917012345678, got %q", m.SMSC)
		}
		switch m.Baud {
		case 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600:
		default:
			bad(k+".baud", "must be a standard rate such as 115200, got %d", m.Baud)
		}
		positive(k+".submit_timeout", m.SubmitTimeout)
		if m.Validity < 5*time.Minute || m.Validity > 63*7*24*time.Hour {
			bad(k+".validity", "must be between 5m and 63 weeks (TS 23.040 relative validity), got %s", m.Validity)
		}
		for j, p := range m.Prefixes {
			if !prefix.MatchString(p) {
				bad(fmt.Sprintf("%s.prefixes[%d]", k, j), "must be + and 1 to 15 digits, got %q", p)
			}
		}
		atLeast(k+".per_minute", m.PerMinute, 0)
		atLeast(k+".per_hour", m.PerHour, 0)
		atLeast(k+".per_day", m.PerDay, 0)
		if m.Calls != "" && m.Calls != "reject" && m.Calls != "ignore" {
			bad(k+".calls", `must be "reject" or "ignore", got %q`, m.Calls)
		}
		if b := m.Balance; b != nil {
			if b.USSD == "" {
				bad(k+".balance.ussd", "set the USSD code that answers with the balance, e.g. *100#")
			}
			if b.Every < time.Minute {
				bad(k+".balance.every", "must be at least 1m (each check is a USSD request to the network), got %s", b.Every)
			}
			if re, err := regexp.Compile(b.Pattern); err != nil {
				bad(k+".balance.pattern", "is not a regular expression: %v", err)
			} else if re.SubexpIndex("amount") < 0 {
				bad(k+".balance.pattern", `needs a group named amount, e.g. "balance (?P<amount>[0-9.,]+)"`)
			}
		}
		if strings.ContainsAny(m.ResetCommand, "\r\n\"") {
			bad(k+".reset_command", "must be one AT command without line ends or quotes, got %q", m.ResetCommand)
		}
	}

	atLeast("pool.min_ready_modems", c.Pool.MinReadyModems, 0)
	positive("pool.probe_interval", c.Pool.ProbeInterval)
	positive("pool.ussd_timeout", c.Pool.USSDTimeout)
	atLeast("pool.max_resets_per_day", c.Pool.MaxResetsPerDay, 1)
	positive("pool.command_timeout", c.Pool.CommandTimeout)

	atLeast("queue.max_attempts", c.Queue.MaxAttempts, 1)
	positive("queue.retry_backoff", c.Queue.RetryBackoff)
	if c.Queue.MaxBackoff < c.Queue.RetryBackoff {
		bad("queue.max_backoff", "must not be less than retry_backoff (%s), got %s", c.Queue.RetryBackoff, c.Queue.MaxBackoff)
	}
	if c.Queue.SweepInterval < 0 {
		bad("queue.sweep_interval", "must not be negative, got %s", c.Queue.SweepInterval)
	}
	positive("queue.lease", c.Queue.Lease)
	positive("queue.report_window", c.Queue.ReportWindow)
	positive("queue.default_expiry", c.Queue.DefaultExpiry)
	positive("queue.max_expiry", c.Queue.MaxExpiry)
	if c.Queue.DefaultExpiry > c.Queue.MaxExpiry {
		bad("queue.default_expiry", "must not be more than queue.max_expiry (%s), got %s", c.Queue.MaxExpiry, c.Queue.DefaultExpiry)
	}
	for i, typ := range c.Verify.AllowedNumberTypes {
		if _, ok := simgate.NumberTypes[typ]; !ok {
			bad(fmt.Sprintf("verify.allowed_number_types[%d]", i), "unknown number type %q; known: %s",
				typ, strings.Join(slices.Sorted(maps.Keys(simgate.NumberTypes)), ", "))
		}
	}

	v := &c.Verify
	if v.Secret != "" && len(v.Secret) < 32 {
		bad("verify.secret", "must be at least 32 characters (it keys the code hashes), got %d", len(v.Secret))
	}
	for _, p := range verifyOptions(*v).Check() {
		bad("verify."+p.Field, "%s", p.Text)
	}
	atLeast("verify.max_checks", v.MaxChecks, 1)
	atLeast("verify.max_sends", v.MaxSends, 1)
	positive("verify.send_window", v.SendWindow)
	atLeast("verify.failure_cap", v.FailureCap, 1)
	for i, cc := range v.AllowedCountries {
		if len(cc) != 2 || strings.ToUpper(cc) != cc {
			bad(fmt.Sprintf("verify.allowed_countries[%d]", i), "must be a two-letter ISO 3166 code such as DE, got %q", cc)
		}
	}
	if v.DefaultRegion != "" && (len(v.DefaultRegion) != 2 || strings.ToUpper(v.DefaultRegion) != v.DefaultRegion) {
		bad("verify.default_region", "must be a two-letter ISO 3166 code such as DE, got %q", v.DefaultRegion)
	}
	if v.PrefixVelocityLen < 2 || v.PrefixVelocityLen > 15 {
		bad("verify.prefix_velocity_length", "must be 2 to 15 digits, got %d", v.PrefixVelocityLen)
	}
	atLeast("verify.prefix_velocity_per_hour", v.PrefixVelocityHour, 1)

	for _, r := range []struct {
		key string
		RateConfig
	}{{"limits.per_api_key", c.Limits.PerAPIKey}, {"limits.per_ip", c.Limits.PerIP}, {"limits.per_number", c.Limits.PerNumber}} {
		if r.Rate <= 0 {
			bad(r.key+".rate", "must be positive, got %v", r.Rate)
		}
		atLeast(r.key+".burst", r.Burst, 1)
	}
	atLeast("limits.global_sms_per_hour", c.Limits.GlobalPerHour, 1)
	atLeast("limits.global_sms_per_day", c.Limits.GlobalPerDay, 1)

	if c.Console.SessionTTL < time.Minute || c.Console.SessionTTL > 30*24*time.Hour {
		bad("console.session_ttl", "must be between 1m and 720h, got %s", c.Console.SessionTTL)
	}
	if c.Console.Refresh < time.Second {
		bad("console.refresh", "must be at least 1s, got %s", c.Console.Refresh)
	}

	w := &c.Webhooks
	positive("webhooks.timeout", w.Timeout)
	positive("webhooks.min_backoff", w.MinBackoff)
	if w.MaxBackoff < w.MinBackoff {
		bad("webhooks.max_backoff", "must not be less than min_backoff (%s), got %s", w.MinBackoff, w.MaxBackoff)
	}
	if w.RetryFor < 24*time.Hour {
		bad("webhooks.retry_for", "must be at least 24h, got %s", w.RetryFor)
	}
	if w.Retention <= w.RetryFor {
		bad("webhooks.retention", "must be longer than retry_for (%s), got %s", w.RetryFor, w.Retention)
	}
	positive("webhooks.interval", w.Interval)
	for _, p := range webhook.CheckEndpoints(webhookEndpoints(*w)) {
		bad("webhooks."+p.Field, "%s", p.Text)
	}
	return ps
}

var (
	validName   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)
	validNodeID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	prefix      = regexp.MustCompile(`^\+[0-9]{1,15}$`)
)

func digits(s string, lo, hi int) bool {
	if len(s) < lo || len(s) > hi {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Warnings are settings that are valid but probably not what the operator
// wants; check-config prints them.
func (c *Config) Warnings() []string {
	var ws []string
	if host, _, err := net.SplitHostPort(c.HTTP.Listen); err == nil && c.HTTP.TLSCert == "" {
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			ws = append(ws, fmt.Sprintf("http.listen: %s serves every address without TLS: API keys and codes cross the network in the clear; set http.tls_cert and http.tls_key, or listen on 127.0.0.1 behind a TLS proxy", c.HTTP.Listen))
		}
	}
	if len(c.Verify.AllowedCountries) == 0 {
		ws = append(ws, "verify.allowed_countries is empty, so every SMS is refused (\"SMS to country DE is not allowed\"): list the countries to send to, e.g. [DE, AT]")
	}
	return ws
}
