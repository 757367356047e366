package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemoServe pastes what simgate demo --serve prints, as its reader
// would: the exports, every curl command in order (with the code the
// handset received for <code>), and the Node.js snippet with Twilio's npm
// client. curl and the npm package are needed; without them the test
// skips, unless SIMGATE_REQUIRE_INTEROP=1 (as in CI).
func TestDemoServe(t *testing.T) {
	nodeModules, err := filepath.Abs(filepath.Join("testdata", "twilio-node", "node_modules"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = exec.LookPath("curl")
	if err == nil {
		_, err = os.Stat(filepath.Join(nodeModules, "twilio"))
	}
	if err != nil {
		if os.Getenv("SIMGATE_REQUIRE_INTEROP") == "1" {
			t.Fatalf("curl or the npm package twilio is missing (%v) and SIMGATE_REQUIRE_INTEROP=1", err)
		}
		t.Skipf("curl or the npm package twilio is missing (%v); set SIMGATE_REQUIRE_INTEROP=1 to fail instead", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, simgateBinary(t), "demo", "--serve", "--dir", t.TempDir())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var printed []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "Stop with Ctrl-C." {
		printed = append(printed, sc.Text())
	}
	// The rest of the output is read until the demo exits, before Wait,
	// which closes the pipe.
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for sc.Scan() {
		}
	}()
	defer func() {
		cmd.Process.Signal(syscall.SIGINT)
		<-drained
		if err := cmd.Wait(); err != nil {
			t.Errorf("simgate demo --serve after Ctrl-C: %v", err)
		}
	}()

	env := os.Environ()
	var curls, snippet []string
	inSnippet := false
	for _, line := range printed {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "export "):
			env = append(env, strings.TrimPrefix(line, "export "))
		case strings.HasPrefix(trimmed, "curl "):
			curls = append(curls, trimmed)
		case strings.HasPrefix(trimmed, "In Node.js"):
			inSnippet = true
		case inSnippet && trimmed == "":
			inSnippet = false
		case inSnippet:
			snippet = append(snippet, trimmed)
		}
	}
	inbox := regexp.MustCompile(`(http://\S+)/handsets/`).FindStringSubmatch(strings.Join(printed, "\n"))
	if len(curls) < 8 || len(snippet) != 3 || inbox == nil || len(env) < len(os.Environ())+4 {
		t.Fatalf("simgate demo --serve printed too little:\n%s", strings.Join(printed, "\n"))
	}
	sim := inbox[1]

	handset := regexp.MustCompile(`\+49\d+`)
	sent := map[string]int{} // the handset's SMS before the last code was asked for
	for _, line := range curls {
		to := handset.FindString(line)
		if strings.Contains(line, "<code>") {
			line = strings.Replace(line, "<code>", waitCode(t, sim, to, sent[to]), 1)
		} else if strings.HasSuffix(line, "/v1/verifications") || strings.HasSuffix(line, "/Verifications") {
			sent[to] = len(handsetInbox(t, sim, to))
		}
		line = strings.Replace(line, "curl -s", "curl -sS --fail-with-body", 1)
		sh := exec.CommandContext(ctx, "sh", "-c", line)
		sh.Env = env
		out, err := sh.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
		if strings.Contains(line, "heck") && !strings.Contains(string(out), `"status":"approved"`) {
			t.Fatalf("%s: %s, want approved", line, out)
		}
	}

	script := filepath.Join(t.TempDir(), "snippet.cjs")
	if err := os.WriteFile(script, []byte(strings.Join(snippet, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	node := exec.CommandContext(ctx, "node", script)
	node.Env = append(env, "NODE_PATH="+nodeModules)
	out, err := node.CombinedOutput()
	if err != nil || !regexp.MustCompile(`^VE[0-9a-f]{32} pending\n$`).Match(out) {
		t.Fatalf("the Node.js snippet: %v\n%s\n%s", err, strings.Join(snippet, "\n"), out)
	}
}

// handsetInbox reads the texts the handset to received, from the virtual
// modems' control API at sim.
func handsetInbox(t *testing.T, sim, to string) []string {
	t.Helper()
	res, err := http.Get(sim + "/handsets/" + to + "/inbox")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var msgs []struct{ Text string }
	if err := json.NewDecoder(res.Body).Decode(&msgs); err != nil {
		t.Fatal(err)
	}
	texts := make([]string, len(msgs))
	for i, m := range msgs {
		texts[i] = m.Text
	}
	return texts
}

// waitCode waits until the handset to has more than before SMS and
// returns the code in the newest.
func waitCode(t *testing.T, sim, to string, before int) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if texts := handsetInbox(t, sim, to); len(texts) > before {
			if code := codeRE.FindString(texts[len(texts)-1]); code != "" {
				return code
			}
			t.Fatalf("no code in %q", texts[len(texts)-1])
		}
	}
	t.Fatalf("no new SMS to %s", to)
	return ""
}
