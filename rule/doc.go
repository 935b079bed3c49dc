// Package rule is the release rule: its model, its three notations (Nepxion
// XML, JSON, YAML), validation, the per-request decision, and the
// orchestration that expands a short spec into a full rule with the live
// versions of each service.
//
// The package is pure: no network, no goroutines, no clocks. Everything it
// returns is immutable and safe for concurrent use.
//
// # Rules
//
// [Parse] reads a rule compatible with Nepxion Discovery:
//
//	<rule>
//	    <strategy>                    <!-- fallback per route type -->
//	        <version>{"svc-a":"1.0","svc-b":"1.0"}</version>
//	    </strategy>
//	    <strategy-release>
//	        <conditions type="blue-green">
//	            <condition id="c0" expression="#H['xyz'] == '1'" version-id="route-1"/>
//	        </conditions>
//	        <conditions type="gray">
//	            <condition id="c1" version-id="route-0=90;route-1=10"/>
//	        </conditions>
//	        <routes>
//	            <route id="route-0" type="version">{"svc-a":"1.0","svc-b":"1.0"}</route>
//	            <route id="route-1" type="version">{"svc-a":"1.1","svc-b":"1.1"}</route>
//	        </routes>
//	        <header>{"xyz":"1"}</header>
//	    </strategy-release>
//	    <strategy-failover> ... </strategy-failover>
//	    <strategy-blacklist> ... </strategy-blacklist>
//	</rule>
//
// The route types are version, region, address, version-weight and
// region-weight; a condition references routes with version-id, region-id,
// address-id, version-weight-id and region-weight-id. Values are a JSON map
// by service or one plain string for every service (see [Value]).
//
// The same rule can be written as JSON or YAML with the XML names as keys;
// [EncodeJSON] shows the shape. Nepxion's own JSON format (its RuleEntity:
// "strategyEntity", "strategyReleaseEntity", ...) is read too, told apart
// by its keys, and [EncodeNepxionJSON] writes it. [EncodeXML] writes the XML
// form back so a Nepxion user recognizes it; encoding, parsing and encoding
// again gives the same bytes.
//
// Parsing is as lenient as Nepxion's, so a Go hop loads every rule a Java
// hop loads: unknown sections, elements, attributes and keys are skipped
// and listed in [Rule.Ignored]; the old header= attribute is read as the
// expression; types are read in any case; routes are found by id and type;
// a condition naming a missing route is kept and yields nothing for that
// route type. Sections routing does not use (register, parameter, and any
// other) are kept and written back by the encoders, so a rule graylane
// rewrites still carries them for the Java hops; so is <discovery>, whose
// host, version and region filters and weights are also read into
// [Rule.Discovery]. What
// Nepxion rejects is rejected too: a bad document gets an [*Error] naming
// the element and, where known, the line and column. A document may be at most
// [MaxDocumentSize] bytes (Consul's largest value), nest at most 64 levels
// and hold at most one value per 16 bytes beyond the first few thousand, so
// parsing a hostile document costs a small multiple of its size in memory.
//
// Two more leniencies keep a Go hop loading what a Java hop loads, since
// Nepxion reads neither part when it loads a rule: a condition whose
// expression does not compile never holds (a Java hop's evaluation throws,
// which Nepxion counts as false), and weight lists are read as Nepxion's
// WeightEntityWrapper reads them (an unreadable weight is 0; see
// [ParseWeights]). [Rule.Ignored] says what was read that way.
//
// # Decisions
//
// [Rule.Decide] decides, per request, as a Nepxion hop does. Each route
// type is decided in tiers: blue-green conditions, then gray conditions,
// then <strategy>; the first tier that yields a value wins. Conditions are
// tried in Nepxion's order, not in document order: more #H['...']
// references first (the more specific condition wins), ties in document
// order, conditions without expression last.
//
// A blue-green condition takes part for the route types it names: per type,
// the first true one wins, else the first without expression naming that
// type (several such defaults may cover different types). One gray condition
// is chosen per request for all types (the first true one, else the first
// without expression); it decides version, region and address, each drawing
// one of its routes by weight on its own (weights need not add up to 100; a
// weight of 0 is never picked); a type it does not name falls back to
// <strategy>.
//
// Expressions read a request's values in Nepxion's order: the query
// parameter, the cookie, then the header, a blank value passing the name on
// to the next source. The rule's built-in <header> replaces the request's
// header of the same name, as Nepxion does ([BuiltInFirst]), but not its
// query parameters or cookies; [RequestFirst] puts it after the request's
// header. The sticky key is read the same way. The decision carries the
// header so the entry point can set it on the request.
//
// Beyond Nepxion, a gray <conditions> element may carry sticky="#H['user-id']":
// when the request has that value, its hash replaces the random draw, so a
// user stays on one side of the split. Rules without it are plain Nepxion
// rules.
//
// The decision travels down the chain as n-d-* headers: [Value.String]
// encodes one, [ParseValue] reads it back on the next hop.
//
// # Orchestration
//
// [ParseSpec] reads Nepxion's orchestration spec (service, blueGreen, gray,
// header, sort) and [Orchestrate] expands it with an [Inventory] of live
// instances: per service the versions are ordered ("default" first), the
// first is old, the rest new; route-0 is old, route-1 new; green (old) and
// blue (new) select them in blue-green conditions (condition-0 and
// condition-1, each with a required expression, as Nepxion's console
// writes them) and gray weights [old, new] split between them. The result is deterministic, so the balancer can keep
// the spec and orchestrate again whenever versions change. [ParseDocument]
// accepts either a rule or a spec, for a KV key that may hold either.
//
// # Layout
//
// Every notation takes one path: a reader (readxml.go, readjson.go,
// readyaml.go), after the shape checks of limits.go, turns the bytes into a
// tree with positions; a front end (fromxml.go, fromtree.go for graylane's
// JSON and YAML, nepxionjson.go for Nepxion's JSON) turns the tree into the
// raw form (raw.go); build (build.go) validates the raw form and makes the
// Rule, so every notation accepts and rejects the same rules with the same
// messages. Errors and positions live in errors.go; the sections kept for
// the round trip in kept.go; the encoders in encodexml.go, encodetree.go
// and nepxionjson.go; the decision in decide.go; specs in spec.go and
// orchestrate.go.
package rule
