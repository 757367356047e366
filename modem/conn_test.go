package modem

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate/modem/sim"
	"golang.org/x/sys/unix"
)

// blockingReads are the numbers of the system calls a thread sits in while
// it waits for a descriptor without the runtime's poller: read, select,
// pselect6, poll and ppoll.
var blockingReads = map[string][]int{
	"amd64": {0, 7, 23, 270, 271},
	"arm64": {63, 72, 73},
}

// threadsInBlockingReads counts the threads of this process that sit in one
// of blockingReads, from /proc/self/task/*/syscall, leaving out the thread
// that reads those files.
func threadsInBlockingReads(t *testing.T) int {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self := fmt.Sprintf("/proc/self/task/%d/syscall", unix.Gettid())
	nrs, ok := blockingReads[runtime.GOARCH]
	if !ok {
		t.Skipf("no system call numbers for %s", runtime.GOARCH)
	}
	tasks, err := filepath.Glob("/proc/self/task/*/syscall")
	if err != nil || len(tasks) == 0 {
		t.Skipf("no /proc/self/task: %v", err)
	}
	n := 0
	for _, p := range tasks {
		if p == self {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread ended
		}
		nr, err := strconv.Atoi(strings.Fields(string(b) + " x")[0])
		if err != nil {
			continue // "running": not in a system call
		}
		for _, r := range nrs {
			if nr == r {
				n++
			}
		}
	}
	return n
}

// Idle modems must not hold threads: go.bug.st/serial's Read blocks in
// select(2), which keeps one of the scheduler's Ps per idle modem until the
// runtime's monitor takes it back. The driver reads through the poller.
func TestIdleModemsHoldNoThreads(t *testing.T) {
	if _, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(os.Getpid()) + "/syscall"); err != nil {
		t.Skipf("cannot read this process's system calls: %v", err)
	}
	const n = 8
	cfgs := make([]sim.Config, n)
	_, mods, dir := startSims(t, cfgs...)
	for i, sm := range mods {
		openModem(t, Config{Name: fmt.Sprint("m", i), Device: sm.Path()}, testOptions(t, dir, nil))
	}
	// The modems are idle once open; allow the last answers to be read.
	deadline := time.Now().Add(5 * time.Second)
	var got int
	for {
		if got = threadsInBlockingReads(t); got == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got != 0 {
		t.Fatalf("%d threads sit in a blocking read with %d idle modems open, want 0", got, n)
	}
}
