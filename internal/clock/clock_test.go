package clock

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSleep(t *testing.T) {
	live := context.Background()
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		d    time.Duration
		want bool
	}{
		{name: "no wait, live", ctx: live, d: 0, want: true},
		{name: "negative, live", ctx: live, d: -time.Second, want: true},
		{name: "no wait, ended", ctx: ended, d: 0, want: false},
		{name: "short wait, live", ctx: live, d: time.Microsecond, want: true},
		// An hour-long wait returns at once: the context has ended (a
		// regression would hang the test, not pass it).
		{name: "long wait, ended", ctx: ended, d: time.Hour, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Sleep(tt.ctx, tt.d); got != tt.want {
				t.Errorf("Sleep(%s) = %v, want %v", tt.d, got, tt.want)
			}
		})
	}
}

// TestSleepEndsWithContext cancels the context of a wait already under
// way: the wait ends with false.
func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan bool)
	go func() { res <- Sleep(ctx, time.Hour) }()
	cancel()
	if <-res {
		t.Error("a wait whose context ended reported the full time")
	}
}
