package pick

import (
	"strings"

	"github.com/graylane/graylane/discovery/instance"
)

// Identity is who is calling: the service instance a balancer runs in. A
// hop sends it on in Nepxion's n-d-service-* headers (each hop sets its own,
// never forwarding the caller's), and picks read it where a rule depends on
// the caller: the <discovery> section's consumer version, zone and region
// affinity, group isolation. The zero Identity is an anonymous caller.
type Identity struct {
	// Service is the caller's service name (n-d-service-id; Nepxion's
	// spring.application.name).
	Service string
	// ID is the caller instance's own id (Consul's service ID, or Nepxion's
	// spring.application.uuid).
	ID string
	// AppID is an optional application id (n-d-service-app-id).
	AppID string
	// Type is the kind of service, as Nepxion names it: "service" or
	// "gateway" (n-d-service-type); empty means "service".
	Type string
	// Address is the caller's host:port (n-d-service-address).
	Address string
	// Version, Region, Env, Zone and Group are the caller's own
	// (n-d-service-version, -region, -env, -zone, -group).
	Version, Region, Env, Zone, Group string
}

// IdentityOf returns the identity of a registered instance: the values a
// registrar gave discovery are the caller's own.
func IdentityOf(in *instance.Instance) Identity {
	return Identity{
		Service: in.Service,
		ID:      in.ID,
		Address: in.HostPort(),
		Version: in.Version,
		Region:  in.Region,
		Env:     in.Env,
		Zone:    in.Zone,
		Group:   in.Group,
	}
}

// IsZero reports whether id names nobody.
func (id *Identity) IsZero() bool { return *id == Identity{} }

// The identity headers, as Nepxion's DiscoveryConstant names them, in the
// order its interceptors set them (FeignStrategyInterceptor.applyInnerHeader).
const (
	HeaderServiceGroup   = "n-d-service-group"
	HeaderServiceType    = "n-d-service-type"
	HeaderServiceAppID   = "n-d-service-app-id"
	HeaderServiceID      = "n-d-service-id"
	HeaderServiceAddress = "n-d-service-address"
	HeaderServiceVersion = "n-d-service-version"
	HeaderServiceRegion  = "n-d-service-region"
	HeaderServiceEnv     = "n-d-service-env"
	HeaderServiceZone    = "n-d-service-zone"
)

// identityKeys are the identity headers in HTTP's canonical form, the keys
// IdentityHeaders passes to carriers.
var identityKeys = [...]string{
	canonical(HeaderServiceGroup), canonical(HeaderServiceType), canonical(HeaderServiceAppID),
	canonical(HeaderServiceID), canonical(HeaderServiceAddress), canonical(HeaderServiceVersion),
	canonical(HeaderServiceRegion), canonical(HeaderServiceEnv), canonical(HeaderServiceZone),
}

// isIdentityKey reports whether k is one of the identity headers, in any
// case.
func isIdentityKey(k string) bool {
	for _, h := range identityKeys {
		if len(h) == len(k) && strings.EqualFold(h, k) {
			return true
		}
	}
	return false
}

// IdentityHeaders is an identity as Nepxion's n-d-service-* headers, built
// once ([Identity.Headers]) and written onto every outbound carrier: each
// hop sends its own identity, never its caller's. The nil
// *IdentityHeaders is the anonymous caller: it writes no identity header.
type IdentityHeaders struct {
	values [len(identityKeys)][]string // nil where the header is not sent; shared, read-only
}

// Headers returns id as the identity headers a hop sends, with Nepxion's
// rules (FeignStrategyInterceptor.applyInnerHeader and its RestTemplate and
// WebClient twins): an empty field is not sent, nor a version, region, env
// or zone that is "default" (Nepxion's unset value); a named identity
// without Type sends "service", Nepxion's default service type. The zero
// Identity sends nothing.
func (id *Identity) Headers() *IdentityHeaders {
	if id.IsZero() {
		return nil
	}
	typ := id.Type
	if typ == "" {
		typ = "service"
	}
	vals := [len(identityKeys)]string{id.Group, typ, id.AppID, id.Service, id.Address,
		notDefault(id.Version), notDefault(id.Region), notDefault(id.Env), notDefault(id.Zone)}
	h := new(IdentityHeaders)
	for i, v := range vals {
		if v != "" {
			h.values[i] = []string{v}
		}
	}
	return h
}

// notDefault returns v, or "" for Nepxion's unset value "default".
func notDefault(v string) string {
	if v == "default" {
		return ""
	}
	return v
}

// Inject writes the identity headers onto c: each one the identity sends is
// set, the others are removed, so that c never carries a previous hop's
// identity. A nil h removes them all.
func (h *IdentityHeaders) Inject(c Carrier) {
	vs, multi := c.(ValuesSetter)
	for i, key := range identityKeys {
		var v []string
		if h != nil {
			v = h.values[i]
		}
		switch {
		case v == nil:
			c.Set(key, "")
		case multi:
			vs.SetValues(key, v)
		default:
			c.Set(key, v[0])
		}
	}
}
