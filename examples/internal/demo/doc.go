// Package demo is the scaffolding graylane's runnable examples share: demo
// plumbing, not part of the library, and not meant to be imported outside
// examples/.
//
// It holds only what has nothing to teach about graylane: where the demo's
// services find each other (World: the embedded registry, or a Consul agent
// with the registrations and the rule key cleaned up at the end), loopback
// listeners for the in-process instances (Fleet), a handler that calls the
// next service and reports the chain (Hop), a load driver that fires
// requests from a few goroutines and counts what came back (Send, Tally),
// the binomial tolerance of a weighted split (Tolerance), and the command
// line around run (Main).
//
// Every library call an example is about stays in the example's own
// main.go: balancer.New and its options, Middleware, Client, the discovery
// constructors (discovery.NewConsul, discovery.NewConsulRules,
// discovery.Register, passed to Open), package rest and package grpcroute.
package demo
