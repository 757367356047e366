package modem

import (
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// claims records which modem of a pool holds which port, so that a modem
// looking for its identity does not probe (and disturb) a port another modem
// is using. Ports are compared by their resolved path: /dev/serial/by-id
// links point at the ttyUSB devices.
type claims struct {
	mu     sync.Mutex
	owners map[string]*Modem
}

func newClaims() *claims { return &claims{owners: map[string]*Modem{}} }

func (c *claims) claim(path string, m *Modem) bool {
	key := resolve(path)
	c.mu.Lock()
	defer c.mu.Unlock()
	if o, ok := c.owners[key]; ok && o != m {
		return false
	}
	c.owners[key] = m
	return true
}

func (c *claims) release(path string, m *Modem) {
	key := resolve(path)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.owners[key] == m {
		delete(c.owners, key)
	}
}

func resolve(path string) string {
	if r, err := filepath.EvalSymlinks(path); err == nil {
		return r
	}
	return filepath.Clean(path)
}

// expand turns paths and globs into existing paths, in order, without
// duplicates (by resolved path). A plain path is kept even when it does not
// exist yet, so that opening it reports why.
func expand(globs []string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		k := resolve(p)
		if seen[k] {
			return
		}
		seen[k] = true
		out = append(out, p)
	}
	for _, g := range globs {
		if !strings.ContainsAny(g, "*?[") {
			add(g)
			continue
		}
		ms, err := filepath.Glob(g)
		if err != nil {
			continue
		}
		sort.Strings(ms)
		for _, p := range ms {
			add(p)
		}
	}
	return out
}
