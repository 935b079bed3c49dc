package discovery

import "sync"

// Notifier wakes subscribers after changes without ever blocking the
// notifying goroutine: each subscription is a channel with room for one
// value, so a slow subscriber sees one wake-up for many changes and reads
// the latest state itself. The zero value is ready to use; a Notifier must
// not be copied after first use. Watch and RuleWatch notify through one,
// and so can any other live view (a rule in force, say).
type Notifier struct {
	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

// Subscribe returns a channel that receives a value after each Notify,
// and a function that ends the subscription (safe to call more than once).
func (n *Notifier) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	if n.subs == nil {
		n.subs = make(map[chan struct{}]struct{})
	}
	n.subs[ch] = struct{}{}
	n.mu.Unlock()
	return ch, func() {
		n.mu.Lock()
		delete(n.subs, ch)
		n.mu.Unlock()
	}
}

// Notify wakes every subscriber that has no wake-up pending; it never
// blocks on a subscriber.
func (n *Notifier) Notify() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for ch := range n.subs {
		select {
		case ch <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}
