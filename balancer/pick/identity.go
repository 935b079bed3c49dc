package pick

import "github.com/graylane/graylane/discovery"

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
func IdentityOf(in *discovery.Instance) Identity {
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
