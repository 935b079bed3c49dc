package discovery

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/graylane/graylane/discovery/instance"
	"github.com/hashicorp/consul/api"
)

// Keys names the metadata keys that carry an instance's attributes, in
// Consul Service.Meta or as key=value tags. Kubernetes-synced services
// often use other names than Nepxion's; empty fields mean the default.
type Keys struct {
	Version string // default "version"
	Region  string // default "region"
	Zone    string // default "zone"
	Env     string // default "env"
	Group   string // default "group"
	Weight  string // default "weight"; a decimal integer, 0 meaning the default weight
	// UUID holds Nepxion's unique ID, whose timestamp prefix gives the start
	// time (default "spring_application_uuid").
	UUID string
	// Started holds the start time in Unix milliseconds, as Register writes
	// it (default "graylane_started"). It wins over UUID when both parse,
	// because it carries no time-zone ambiguity.
	Started string
}

// DefaultKeys returns the default metadata key names.
func DefaultKeys() Keys {
	return Keys{
		Version: "version",
		Region:  "region",
		Zone:    "zone",
		Env:     "env",
		Group:   "group",
		Weight:  "weight",
		UUID:    "spring_application_uuid",
		Started: "graylane_started",
	}
}

func (k Keys) withDefaults() Keys {
	d := DefaultKeys()
	set := func(dst *string, def string) {
		if *dst == "" {
			*dst = def
		}
	}
	set(&k.Version, d.Version)
	set(&k.Region, d.Region)
	set(&k.Zone, d.Zone)
	set(&k.Env, d.Env)
	set(&k.Group, d.Group)
	set(&k.Weight, d.Weight)
	set(&k.UUID, d.UUID)
	set(&k.Started, d.Started)
	return k
}

// EntryError reports a Consul health entry that could not be used, or a
// value in it that was ignored.
type EntryError struct {
	Service string // the watched service
	ID      string // the instance's service ID, if known
	Field   string // what was wrong: "address", "port", "weight", ...
	Value   string // the offending value
	Reason  string
}

// Error describes the problem with the instance and the value.
func (e *EntryError) Error() string {
	return fmt.Sprintf("service %q instance %q: %s %q: %s", e.Service, e.ID, e.Field, e.Value, e.Reason)
}

// instanceFromEntry maps one health entry to an Instance. ok is false when
// the entry cannot be used at all (no service, no address, a bad port); the
// problems list values that were ignored or made the entry unusable. It
// never panics, whatever the entry holds.
func instanceFromEntry(service string, keys *Keys, e *api.ServiceEntry) (in Instance, ok bool, problems []*EntryError) {
	if e == nil || e.Service == nil {
		return in, false, []*EntryError{{Service: service, Field: "service", Reason: "entry without service"}}
	}
	s := e.Service
	bad := func(field, value, reason string) {
		problems = append(problems, &EntryError{Service: service, ID: s.ID, Field: field, Value: value, Reason: reason})
	}
	in.ID = s.ID
	in.Service = s.Service
	if in.Service == "" {
		in.Service = service
	}
	in.Address = s.Address
	if in.Address == "" && e.Node != nil {
		// Consul's rule: a service without its own address uses the node's.
		in.Address = e.Node.Address
	}
	in.Port = s.Port
	if in.ID == "" {
		bad("id", "", "empty service ID")
		return in, false, problems
	}
	if in.Address == "" {
		bad("address", "", "neither service nor node address")
		return in, false, problems
	}
	if strings.ContainsAny(in.Address, " \t\r\n/?#") {
		bad("address", in.Address, "not a host name or IP")
		return in, false, problems
	}
	if in.Port <= 0 || in.Port > 65535 {
		bad("port", strconv.Itoa(in.Port), "outside 1-65535")
		return in, false, problems
	}

	in.Meta = mergeMeta(s.Tags, s.Meta)
	in.Version = in.Meta[keys.Version]
	if in.Version == "" {
		in.Version = DefaultVersion
	}
	in.Region = in.Meta[keys.Region]
	in.Zone = in.Meta[keys.Zone]
	in.Env = in.Meta[keys.Env]
	in.Group = in.Meta[keys.Group]
	if w, ok := in.Meta[keys.Weight]; ok && w != "" {
		n, err := strconv.Atoi(strings.TrimSpace(w))
		switch {
		case err != nil:
			bad("weight", w, "not an integer; using the default weight")
		case n < 0:
			bad("weight", w, "negative; using the default weight")
		default:
			in.Weight = n
		}
	}
	in.Started = startedFromMeta(in.Meta, keys)
	return in, true, problems
}

// mergeMeta builds the metadata of an instance: key=value tags first, then
// Service.Meta, which wins. Tags without '=' or with an empty key carry no
// metadata. Without either, the result is nil.
func mergeMeta(tags []string, meta map[string]string) map[string]string {
	n := len(meta)
	for _, t := range tags {
		if i := strings.IndexByte(t, '='); i > 0 {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	out := make(map[string]string, n)
	for _, t := range tags {
		if i := strings.IndexByte(t, '='); i > 0 {
			out[t[:i]] = t[i+1:]
		}
	}
	for k, v := range meta {
		out[k] = v
	}
	return out
}

func startedFromMeta(meta map[string]string, keys *Keys) time.Time {
	if ms, ok := meta[keys.Started]; ok {
		if n, err := strconv.ParseInt(ms, 10, 64); err == nil && n > 0 && n < 1<<53 {
			return time.UnixMilli(n)
		}
	}
	if id, ok := meta[keys.UUID]; ok {
		if t, ok := ParseStarted(id); ok {
			return t
		}
	}
	return time.Time{}
}

// snapshotFromEntries builds the snapshot of a health answer. Unusable
// entries are left out; report, if not nil, receives every problem.
func snapshotFromEntries(service string, index uint64, keys *Keys, entries []*api.ServiceEntry, report func(*EntryError)) *Snapshot {
	list := make([]Instance, 0, len(entries))
	for _, e := range entries {
		in, ok, problems := instanceFromEntry(service, keys, e)
		if report != nil {
			for _, p := range problems {
				report(p)
			}
		}
		if ok {
			list = append(list, in)
		}
	}
	return instance.NewSnapshot(service, index, list)
}
