package waittest

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Until polls until the condition holds, and no more.
func TestUntilReturns(t *testing.T) {
	calls := 0
	Until(t, "the third poll", func() bool { calls++; return calls == 3 })
	if calls != 3 {
		t.Fatalf("returned after %d polls, want 3", calls)
	}
}

// fatalTB records Fatalf and stops its goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// A condition that never holds fails the test, naming what it waited for.
func TestUntilFails(t *testing.T) {
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Within(f, 20*time.Millisecond, "the impossible", func() bool { return false })
	}()
	<-done
	if f.msg != "waited 20ms for the impossible" {
		t.Fatalf("Fatalf(%q), want waited 20ms for the impossible", f.msg)
	}
}
