// Package instance holds the plain data of service discovery: an [Instance]
// of a service and a [Snapshot] of a service's instances, with the version
// order ([CompareVersions], [DefaultVersion]) that groups them.
//
// Users normally write these names through package discovery
// (discovery.Instance, discovery.Snapshot, discovery.NewSnapshot, ...):
// discovery declares the types as aliases of the ones here, so they are the
// same types with the same methods, and forwards the constant and the
// functions. They live apart from
// discovery, which is also the Consul client, so that the pick engine
// (package balancer/pick) can choose among instances without depending on
// Consul's client, net/http or any networking: this package imports only a
// few packages of the standard library (strings, strconv, slices, time) and
// graylane's internal version order.
package instance
