package demo

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Workers is how many requests Send keeps in flight.
const Workers = 8

// Tally counts the outcomes of a demo's requests, e.g. the chains that
// served them, and keeps their errors. The zero value is ready; it is safe
// for concurrent use.
type Tally struct {
	mu     sync.Mutex
	counts map[string]int
	errs   []string
}

// Add counts outcome, or keeps err if it is not nil.
func (t *Tally) Add(outcome string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.errs = append(t.errs, err.Error())
		return
	}
	if t.counts == nil {
		t.counts = map[string]int{}
	}
	t.counts[outcome]++
}

// Counts returns how often each outcome was added.
func (t *Tally) Counts() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := make(map[string]int, len(t.counts))
	for k, n := range t.counts {
		m[k] = n
	}
	return m
}

// Errors returns the errors added, in the order they arrived.
func (t *Tally) Errors() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.errs...)
}

// Send calls call(i) for every i in [0, n) from Workers goroutines, tallies
// what each returns and waits for the last. call must be safe for
// concurrent use.
func Send(n int, call func(i int) (string, error)) *Tally {
	t := &Tally{}
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				t.Add(call(i))
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return t
}

// Tolerance is how far, in percentage points, an observed split of n draws
// may fall from want (in percent): five standard deviations of the
// binomial, so a correct balancer practically never fails the check, and
// exact for 0% and 100%.
func Tolerance(want float64, n int) float64 {
	p := want / 100
	return 100 * 5 * math.Sqrt(p*(1-p)/float64(n))
}

// Chains lists counts as "outcome: n", sorted and joined by ", ".
func Chains(counts map[string]int) string {
	parts := make([]string, 0, len(counts))
	for k, n := range counts {
		parts = append(parts, fmt.Sprintf("%s: %d", k, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// Counts lists counts as "outcome xn", sorted and joined by ", ", or "-"
// when there are none.
func Counts(counts map[string]int) string {
	if len(counts) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(counts))
	for k, n := range counts {
		parts = append(parts, k+" x"+strconv.Itoa(n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
