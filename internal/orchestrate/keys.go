package orchestrate

// Where the spec and the lock of a rule key live.
const (
	// SpecPrefix is the KV prefix of published specs: the spec of rule key
	// K is at SpecPrefix + K.
	SpecPrefix = "graylane/spec/"
	// LockPrefix is the KV prefix of the orchestrators' locks.
	LockPrefix = "graylane/lock/"
)

// RenderedFlags are the KV flags of a rule key's value written by graylane
// from a spec (the ASCII bytes "grlnrndr"). Nepxion reads the value only;
// a value written by anything else (Consul's UI, "consul kv put", a plain
// "graylane publish" of a rule) carries other flags, 0 by default.
const RenderedFlags uint64 = 0x67726c6e726e6472

// SpecKey returns the KV key of the spec rendered into ruleKey.
func SpecKey(ruleKey string) string { return SpecPrefix + ruleKey }

// LockKey returns the KV key of the lock the orchestrators of ruleKey
// compete for.
func LockKey(ruleKey string) string { return LockPrefix + ruleKey }
