package instance

import (
	"strconv"
	"strings"
	"time"

	"github.com/graylane/graylane/internal/version"
)

// DefaultVersion is the version of an instance that declares none. It always
// counts as the oldest version when versions are ordered.
const DefaultVersion = version.Default

// CompareVersions orders version strings oldest first, the way
// orchestration and the stable-version failover do: DefaultVersion (and "")
// first, then naturally, runs of digits as numbers ("1.9" < "1.10").
func CompareVersions(a, b string) int { return version.Compare(a, b) }

// Instance is one live, healthy instance of a service.
//
// Instances are values; a [Snapshot] owns its instances and never changes
// them, so an Instance read from a snapshot must be treated as read-only
// (its Meta map in particular is shared).
type Instance struct {
	ID      string // unique within the service (Consul's service ID)
	Service string // the service name
	Address string // host name or IP, without port
	Port    int
	Version string // "default" when the instance declares none
	Region  string
	Zone    string
	Env     string
	Group   string
	// Weight is the instance's relative weight for weighted random picks.
	// 0 means the default weight, 100.
	Weight int
	// Meta is the instance's metadata as registered (Consul Service.Meta and
	// key=value tags, Meta winning). Shared: do not modify.
	Meta map[string]string
	// Started is when the instance started, from its unique ID's timestamp
	// prefix or our own registration metadata; zero when unknown.
	Started time.Time

	hostPort string // cached Address:Port, set by NewSnapshot
}

// HostPort returns "address:port" (IPv6 addresses in brackets). For instances
// read from a [Snapshot] it does not allocate.
func (i *Instance) HostPort() string {
	if i.hostPort != "" {
		return i.hostPort
	}
	return joinHostPort(i.Address, i.Port)
}

// joinHostPort is net.JoinHostPort with the port as a number, in one
// allocation (and without importing package net).
func joinHostPort(host string, port int) string {
	var buf [64]byte
	b := buf[:0]
	if strings.IndexByte(host, ':') >= 0 {
		b = append(b, '[')
		b = append(b, host...)
		b = append(b, ']')
	} else {
		b = append(b, host...)
	}
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(port), 10)
	return string(b)
}

// EffectiveWeight returns Weight, or 100 when Weight is 0 or negative.
func (i *Instance) EffectiveWeight() int {
	if i.Weight <= 0 {
		return 100
	}
	return i.Weight
}

// Equal reports whether two instances carry the same data: every field,
// Started compared as an instant, Meta by its entries (nil and empty are
// equal).
func (i *Instance) Equal(o *Instance) bool {
	if i.ID != o.ID || i.Service != o.Service || i.Address != o.Address ||
		i.Port != o.Port || i.Version != o.Version || i.Region != o.Region ||
		i.Zone != o.Zone || i.Env != o.Env || i.Group != o.Group ||
		i.Weight != o.Weight || !i.Started.Equal(o.Started) || len(i.Meta) != len(o.Meta) {
		return false
	}
	for k, v := range i.Meta {
		if ov, ok := o.Meta[k]; !ok || ov != v {
			return false
		}
	}
	return true
}
