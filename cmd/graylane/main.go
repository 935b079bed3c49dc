// Command graylane is the release engineer's tool for graylane and Nepxion
// Discovery rules kept in Consul.
//
//	graylane validate [-strict] FILE...             check rules or specs; errors name file, line and column;
//	                                                warnings say where a Java (Nepxion) hop reads a rule differently
//	graylane render -spec FILE [-format xml]        orchestrate a spec against the live instances in Consul
//	graylane publish -key KEY FILE                  validate, then put a rule to KEY, or a spec to
//	                                                graylane/spec/KEY and its rendering to KEY
//	graylane orchestrate -key KEY...                keep KEY rendered from its spec as versions come and go
//	graylane rollout start|status|pause|resume|abort|promote
//	                                                step a gray release by a plan and roll it back on its figures
//	graylane explain (-rule FILE | -key KEY) -H name=value ...
//	                                                what a request with these headers routes to
//
// Rules are Nepxion XML, JSON or YAML; a spec is the short orchestration
// form (service, blueGreen, gray, header, sort). FILE "-" reads standard
// input. Consul is reached at -consul ADDR, else CONSUL_HTTP_ADDR (default
// 127.0.0.1:8500), with CONSUL_HTTP_TOKEN and the other CONSUL_HTTP_*
// variables honoured.
//
// A spec is published next to the rule it renders: Java (Nepxion) hops
// cannot read a spec, so the rule key holds the rendering, the one document
// every hop reads, and `graylane orchestrate` (run one or more copies; one
// per key is active, through a Consul lock at graylane/lock/KEY) renders it
// again whenever the spec or the versions of its services change. See
// package internal/orchestrate for the rules it writes by.
//
// Exit status: 0 on success, 1 when a document is invalid or an operation
// fails, 2 on a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit statuses.
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	programName = "graylane"
)

type command struct {
	name, args, summary string
	run                 func(e *env, args []string) int
}

// env is what a command reads and writes besides its arguments.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// ctx ends when a long-running command should stop (an interrupt);
	// nil: never.
	ctx context.Context
}

// context returns the context that ends the command.
func (e *env) context() context.Context {
	if e.ctx == nil {
		return context.Background()
	}
	return e.ctx
}

// errorf prints "graylane <cmd>: msg" to stderr.
func (e *env) errorf(cmd, format string, args ...any) {
	fmt.Fprintf(e.stderr, programName+" "+cmd+": "+format+"\n", args...)
}

func commands() []command {
	return []command{
		{"validate", "FILE...", "check rule or spec documents", runValidate},
		{"render", "-spec FILE [-format xml|json|yaml] [-consul ADDR]", "orchestrate a spec against the live instances in Consul and print the rule", runRender},
		{"publish", "-key KEY [-consul ADDR] [-cas INDEX] [-local] FILE", "validate a rule or spec, then put it to Consul KV (a spec with its rendering)", runPublish},
		{"orchestrate", "-key KEY [-key KEY]... [-consul ADDR] [-check-ttl D] [-session-ttl D] [-hold D]", "keep each rule KEY rendered from its spec and the live instances (runs until interrupted)", runOrchestrate},
		{"rollout", rolloutArgs, "step a gray release by a plan, judged on Prometheus figures; or show, pause, resume, abort, promote it", runRollout},
		{"explain", "(-rule FILE | -key KEY) [-H name=value]... [-service NAME]...", "show what a request with these headers routes to", runExplain},
	}
}

// run is the whole program: it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runEnv(&env{stdin: os.Stdin, stdout: stdout, stderr: stderr, ctx: ctx}, args)
}

func runEnv(e *env, args []string) int {
	stdout, stderr := e.stdout, e.stderr
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(e, args[1:])
		}
	}
	fmt.Fprintf(stderr, "%s: unknown command %q\n\n", programName, args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s <command> [flags]\n\nCommands:\n", programName)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n              %s\n", c.name, c.args, c.summary)
	}
	fmt.Fprintf(w, "\nRun '%s <command> -h' for a command's flags.\n", programName)
}

// newFlags returns a flag set for one command that reports to stderr.
func newFlags(name, args string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(programName+" "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s %s %s\n", programName, name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args allowing flags after positional arguments
// ("publish FILE -key K"), as release engineers type them. It returns the
// positional arguments and, on error, the exit status to return.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, int, bool) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK, false
			}
			return nil, exitUsage, false
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, 0, true
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), 0, true
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// readInput reads a file, or standard input for "-".
func (e *env) readInput(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(e.stdin)
	}
	return os.ReadFile(name)
}

// displayName is how a file is named in messages.
func displayName(name string) string {
	if name == "-" {
		return "<stdin>"
	}
	return name
}

// headerFlags collects repeated -H name=value flags.
type headerFlags struct {
	names  []string
	values map[string]string
}

func (h *headerFlags) String() string {
	var parts []string
	for _, n := range h.names {
		parts = append(parts, n+"="+h.values[n])
	}
	return strings.Join(parts, " ")
}

func (h *headerFlags) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok {
		// Also accept the curl form "name: value".
		name, value, ok = strings.Cut(s, ":")
	}
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	if !ok || name == "" {
		return fmt.Errorf("%q is not name=value", s)
	}
	if h.values == nil {
		h.values = make(map[string]string)
	}
	if _, dup := h.values[name]; !dup {
		h.names = append(h.names, name)
	}
	h.values[name] = value
	return nil
}

// listFlag collects a repeated flag, also split at commas.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*l = append(*l, part)
		}
	}
	return nil
}
