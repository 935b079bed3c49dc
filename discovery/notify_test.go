package discovery

import (
	"testing"
	"time"
)

func TestNotifier(t *testing.T) {
	var n Notifier
	n.Notify() // no subscribers: nothing to wake, nothing blocks
	a, stopA := n.Subscribe()
	b, stopB := n.Subscribe()
	defer stopB()
	// Many changes, one pending wake-up each: the notifier never blocks.
	for range 3 {
		n.Notify()
	}
	for name, ch := range map[string]<-chan struct{}{"a": a, "b": b} {
		select {
		case <-ch:
		default:
			t.Fatalf("subscriber %s not woken", name)
		}
		select {
		case <-ch:
			t.Fatalf("subscriber %s woken twice for coalesced changes", name)
		default:
		}
	}
	stopA()
	stopA() // idempotent
	n.Notify()
	select {
	case <-a:
		t.Fatal("woken after unsubscribing")
	default:
	}
	select {
	case <-b:
	default:
		t.Fatal("remaining subscriber not woken")
	}
}

func TestInstanceEqual(t *testing.T) {
	base := Instance{ID: "a", Service: "svc", Address: "10.0.0.1", Port: 80, Version: "1.0", Region: "r", Zone: "z",
		Env: "e", Group: "g", Weight: 5, Started: time.UnixMilli(1700000000000), Meta: map[string]string{"k": "v"}}
	tests := []struct {
		name string
		give func(*Instance)
		want bool
	}{
		{name: "same", give: func(*Instance) {}, want: true},
		{name: "same instant elsewhere", give: func(i *Instance) { i.Started = i.Started.In(time.FixedZone("x", 3600)) }, want: true},
		{name: "id", give: func(i *Instance) { i.ID = "b" }},
		{name: "port", give: func(i *Instance) { i.Port = 81 }},
		{name: "version", give: func(i *Instance) { i.Version = "1.1" }},
		{name: "zone", give: func(i *Instance) { i.Zone = "z2" }},
		{name: "weight", give: func(i *Instance) { i.Weight = 6 }},
		{name: "started", give: func(i *Instance) { i.Started = i.Started.Add(time.Millisecond) }},
		{name: "meta value", give: func(i *Instance) { i.Meta = map[string]string{"k": "w"} }},
		{name: "meta key", give: func(i *Instance) { i.Meta = map[string]string{"j": "v"} }},
		{name: "meta extra", give: func(i *Instance) { i.Meta = map[string]string{"k": "v", "j": "v"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			o.Meta = map[string]string{"k": "v"}
			tt.give(&o)
			if got := base.Equal(&o); got != tt.want {
				t.Fatalf("Equal = %v, want %v", got, tt.want)
			}
			if got := o.Equal(&base); got != tt.want {
				t.Fatalf("Equal (reversed) = %v, want %v", got, tt.want)
			}
		})
	}
	empty, none := Instance{Meta: map[string]string{}}, Instance{}
	if !empty.Equal(&none) {
		t.Fatal("nil and empty Meta differ")
	}
}
