// Package promtest starts a real Prometheus server for tests: Debian's
// prometheus binary (or $GRAYLANE_PROMETHEUS) on a free loopback port,
// with a generated scrape configuration and a short scrape interval, in
// the test's temporary directory. Under CI=true a missing binary fails the
// test; otherwise the test is skipped with the reason.
package promtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ScrapeInterval is how often the server scrapes its targets.
const ScrapeInterval = 250 * time.Millisecond

// Server is a running Prometheus.
type Server struct {
	// URL is the server's base address, e.g. http://127.0.0.1:40123.
	URL string
}

// Binary returns the path of the prometheus binary: $GRAYLANE_PROMETHEUS,
// else prometheus on $PATH.
func Binary() (string, error) {
	if p := os.Getenv("GRAYLANE_PROMETHEUS"); p != "" {
		return p, nil
	}
	p, err := exec.LookPath("prometheus")
	if err != nil {
		return "", errors.New("no prometheus binary on PATH (Debian: apt-get install prometheus; or set GRAYLANE_PROMETHEUS)")
	}
	return p, nil
}

// Start starts a server scraping targets (host:port, path /metrics) and
// waits until it is ready; cleanup stops it.
func Start(tb testing.TB, targets ...string) *Server {
	tb.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatal(err)
		}
		tb.Skip(err)
	}
	dir := tb.TempDir()
	quoted := make([]string, len(targets))
	for i, t := range targets {
		quoted[i] = strconv.Quote(t)
	}
	cfg := fmt.Sprintf("global:\n  scrape_interval: %s\n  scrape_timeout: %s\nscrape_configs:\n  - job_name: graylane\n    static_configs:\n      - targets: [%s]\n",
		ScrapeInterval, ScrapeInterval, strings.Join(quoted, ", "))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		tb.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		tb.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if tb.Failed() {
			tb.Logf("prometheus output:\n%s", out.String())
		}
	})
	s := &Server{URL: "http://" + addr}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/-/ready", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				http.DefaultClient.CloseIdleConnections()
				return s
			}
		}
		select {
		case <-exited:
			tb.Fatalf("prometheus exited:\n%s", out.String())
		case <-ctx.Done():
			tb.Fatalf("prometheus not ready within a minute:\n%s", out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
