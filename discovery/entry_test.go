package discovery

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

func TestInstanceFromEntry(t *testing.T) {
	keys := DefaultKeys()
	k8s := Keys{Version: "app.kubernetes.io/version"}.withDefaults()
	started := time.Date(2024, 3, 5, 10, 20, 30, 456e6, time.Local)
	tests := []struct {
		name     string
		keys     *Keys
		give     *api.ServiceEntry
		wantOK   bool
		want     Instance
		problems []string // fields of the reported problems
	}{
		{
			name:   "tags and meta, meta wins",
			keys:   &keys,
			give:   entry("a", "10.0.0.2", 8080, []string{"version=1.0", "region=r1", "plain", "=x", "zone=z1"}, map[string]string{"version": "1.1", "env": "prod", "group": "g"}),
			wantOK: true,
			want:   Instance{ID: "a", Service: "svc", Address: "10.0.0.2", Port: 8080, Version: "1.1", Region: "r1", Zone: "z1", Env: "prod", Group: "g"},
		},
		{
			name:   "no version is default, node address used",
			keys:   &keys,
			give:   entry("a", "", 8080, nil, nil),
			wantOK: true,
			want:   Instance{ID: "a", Service: "svc", Address: "10.0.0.1", Port: 8080, Version: DefaultVersion},
		},
		{
			name:   "configured keys",
			keys:   &k8s,
			give:   entry("a", "h", 1, nil, map[string]string{"app.kubernetes.io/version": "3", "version": "9"}),
			wantOK: true,
			want:   Instance{ID: "a", Service: "svc", Address: "h", Port: 1, Version: "3"},
		},
		{
			name:     "bad weight ignored",
			keys:     &keys,
			give:     entry("a", "h", 1, []string{"weight=ten"}, nil),
			wantOK:   true,
			want:     Instance{ID: "a", Service: "svc", Address: "h", Port: 1, Version: DefaultVersion},
			problems: []string{"weight"},
		},
		{
			name:     "negative weight ignored",
			keys:     &keys,
			give:     entry("a", "h", 1, nil, map[string]string{"weight": "-5"}),
			wantOK:   true,
			want:     Instance{ID: "a", Service: "svc", Address: "h", Port: 1, Version: DefaultVersion},
			problems: []string{"weight"},
		},
		{
			name:   "weight and start time from uuid",
			keys:   &keys,
			give:   entry("a", "h", 1, nil, map[string]string{"weight": "30", "spring_application_uuid": "20240305-102030-456-1234-567-890"}),
			wantOK: true,
			want:   Instance{ID: "a", Service: "svc", Address: "h", Port: 1, Version: DefaultVersion, Weight: 30, Started: started},
		},
		{
			name:   "start time from registration meta wins",
			keys:   &keys,
			give:   entry("a", "h", 1, nil, map[string]string{"graylane_started": "1700000000123", "spring_application_uuid": "20240305-102030-456-1234-567-890"}),
			wantOK: true,
			want:   Instance{ID: "a", Service: "svc", Address: "h", Port: 1, Version: DefaultVersion, Started: time.UnixMilli(1700000000123)},
		},
		{name: "port zero", keys: &keys, give: entry("a", "h", 0, nil, nil), problems: []string{"port"}},
		{name: "port too big", keys: &keys, give: entry("a", "h", 70000, nil, nil), problems: []string{"port"}},
		{name: "no id", keys: &keys, give: entry("", "h", 1, nil, nil), problems: []string{"id"}},
		{name: "bad address", keys: &keys, give: entry("a", "h/x", 1, nil, nil), problems: []string{"address"}},
		{name: "no address", keys: &keys, give: &api.ServiceEntry{Service: &api.AgentService{ID: "a", Port: 1}}, problems: []string{"address"}},
		{name: "no service", keys: &keys, give: &api.ServiceEntry{}, problems: []string{"service"}},
		{name: "nil entry", keys: &keys, give: nil, problems: []string{"service"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, problems := instanceFromEntry("svc", tt.keys, tt.give)
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v (problems %v)", ok, tt.wantOK, problems)
			}
			var fields []string
			for _, p := range problems {
				fields = append(fields, p.Field)
				if !strings.Contains(p.Error(), `service "svc"`) {
					t.Errorf("problem %q does not say where", p.Error())
				}
			}
			if strings.Join(fields, ",") != strings.Join(tt.problems, ",") {
				t.Fatalf("problems = %v, want fields %v", problems, tt.problems)
			}
			if !ok {
				return
			}
			got.Meta, tt.want.Meta = nil, nil
			if !got.Equal(&tt.want) {
				t.Fatalf("instance = %+v\nwant       %+v", got, tt.want)
			}
		})
	}
}

func TestMergeMeta(t *testing.T) {
	got := mergeMeta([]string{"a=1", "b=2=3", "c", "=d", "e="}, map[string]string{"a": "x"})
	want := map[string]string{"a": "x", "b": "2=3", "e": ""}
	if !maps.Equal(got, want) {
		t.Fatalf("mergeMeta = %v, want %v", got, want)
	}
	if mergeMeta([]string{"plain"}, nil) != nil {
		t.Fatal("no metadata should give a nil map")
	}
}

// FuzzSnapshotFromHealth feeds arbitrary health answers (JSON, as Consul
// sends them) through the mapping and snapshot building: nothing may
// panic, and every kept instance must be usable.
func FuzzSnapshotFromHealth(f *testing.F) {
	seeds := [][]*api.ServiceEntry{
		{entry("a", "10.0.0.2", 8080, []string{"version=1.0", "weight=x"}, map[string]string{"spring_application_uuid": "20240230-999999-000"})},
		{entry("a", "", 65536, nil, nil), entry("a", "h", 1, nil, map[string]string{"graylane_started": "-1"})},
		{{Service: &api.AgentService{ID: "x", Address: "::1", Port: 1}}, {}},
	}
	for _, s := range seeds {
		b, _ := json.Marshal(s)
		f.Add(b)
	}
	f.Add([]byte(`[{"Service":null},{"Node":null,"Service":{"ID":"z","Port":-1,"Tags":["=","a=b"],"Meta":{"weight":"99999999999999999999"}}}]`))
	keys := DefaultKeys()
	f.Fuzz(func(t *testing.T, data []byte) {
		var entries []*api.ServiceEntry
		if json.Unmarshal(data, &entries) != nil {
			return
		}
		s := snapshotFromEntries("svc", 1, &keys, entries, func(p *EntryError) { _ = p.Error() })
		total := 0
		for _, v := range s.Versions {
			vs := s.Version(v)
			total += len(vs)
			for i := range vs {
				in := &vs[i]
				if in.ID == "" || in.Address == "" || in.Port <= 0 || in.Port > 65535 || in.Version != v || in.Weight < 0 {
					t.Fatalf("unusable instance kept: %+v", in)
				}
			}
		}
		if total != s.Len() {
			t.Fatalf("versions cover %d of %d instances", total, s.Len())
		}
	})
}
