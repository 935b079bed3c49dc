package discovery

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/hashicorp/consul/api"
)

func healthAnswer(n int) []*api.ServiceEntry {
	entries := make([]*api.ServiceEntry, n)
	for i := range entries {
		entries[i] = &api.ServiceEntry{
			Node: &api.Node{Node: "node-" + strconv.Itoa(i/10), Address: "10.1.0." + strconv.Itoa(i%250)},
			Service: &api.AgentService{
				ID: "orders-20240305-102030-456-1234-567-" + strconv.Itoa(i), Service: "orders",
				Address: "10.0." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250), Port: 8080,
				Tags: []string{"version=1." + strconv.Itoa(i%4), "zone=z" + strconv.Itoa(i%3), "secure=false"},
				Meta: map[string]string{"region": "east", "env": "prod", "weight": "100",
					"spring_application_uuid": "20240305-102030-456-1234-567-890"},
			},
		}
	}
	return entries
}

// BenchmarkSnapshot builds the snapshot of a 10,000-instance health answer
// (already decoded), as the watcher does on every change.
func BenchmarkSnapshot(b *testing.B) {
	const n = 10000
	entries := healthAnswer(n)
	keys := DefaultKeys()
	b.ReportAllocs()
	var s *Snapshot
	for b.Loop() {
		s = snapshotFromEntries("orders", 1, &keys, entries, nil)
	}
	if s.Len() != n {
		b.Fatalf("%d instances", s.Len())
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/instance")
}

// BenchmarkSnapshotDecode adds what the Consul client does before: decoding
// the JSON answer.
func BenchmarkSnapshotDecode(b *testing.B) {
	const n = 10000
	body, err := json.Marshal(healthAnswer(n))
	if err != nil {
		b.Fatal(err)
	}
	keys := DefaultKeys()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		var entries []*api.ServiceEntry
		if err := json.NewDecoder(bytes.NewReader(body)).Decode(&entries); err != nil {
			b.Fatal(err)
		}
		if s := snapshotFromEntries("orders", 1, &keys, entries, nil); s.Len() != n {
			b.Fatal(s.Len())
		}
	}
}

// BenchmarkSnapshotEqual is the cost of an unchanged answer after building.
func BenchmarkSnapshotEqual(b *testing.B) {
	keys := DefaultKeys()
	entries := healthAnswer(10000)
	x := snapshotFromEntries("orders", 1, &keys, entries, nil)
	y := snapshotFromEntries("orders", 2, &keys, entries, nil)
	b.ReportAllocs()
	for b.Loop() {
		if !x.Equal(y) {
			b.Fatal("not equal")
		}
	}
}

// BenchmarkWatchRead is the pick path's read: load the snapshot, take a
// version's instances, read an address.
func BenchmarkWatchRead(b *testing.B) {
	keys := DefaultKeys()
	w := NewWatch("orders")
	w.Publish(snapshotFromEntries("orders", 1, &keys, healthAnswer(1000), nil))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			vs := w.Snapshot().Version("1.2")
			if len(vs[i%len(vs)].HostPort()) == 0 {
				b.Fatal("empty address")
			}
			i++
		}
	})
}
