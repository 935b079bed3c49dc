package orchestrate

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/consul/api"
)

// ErrChanged is returned by Publish when the spec key's index is not the
// one the caller's check-and-set named.
var ErrChanged = errors.New("changed since the given index")

// Publish writes spec (the document as the person wrote it) to the spec key
// of ruleKey and, when rendered is not nil, rendered.XML to ruleKey with
// RenderedFlags, in one transaction: Java and Go hops never see a rule
// without its spec or the other way round. With specCAS >= 0 the spec key
// is written only if its ModifyIndex is specCAS (0: only if it does not
// exist), else Publish fails with an error wrapping ErrChanged. It returns
// the index of the write.
//
// The rule key is overwritten whatever it holds: publishing is a person's
// decision. A running Orchestrator renders the new spec again with its
// expansion hold; its own writes check the spec's index, so it never puts
// back a rendering of the spec before this one.
func Publish(ctx context.Context, client *api.Client, ruleKey string, spec []byte, rendered *Rendering, specCAS int64) (uint64, error) {
	specOp := &api.KVTxnOp{Verb: api.KVSet, Key: SpecKey(ruleKey), Value: spec}
	if specCAS >= 0 {
		specOp.Verb, specOp.Index = api.KVCAS, uint64(specCAS)
	}
	ops := api.TxnOps{{KV: specOp}}
	if rendered != nil {
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: ruleKey, Value: rendered.XML, Flags: RenderedFlags}})
	}
	ok, resp, _, err := client.Txn().Txn(ops, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return 0, fmt.Errorf("write %q and %q: %w", SpecKey(ruleKey), ruleKey, err)
	}
	if !ok {
		for _, e := range resp.Errors {
			if e.OpIndex == 0 && specCAS >= 0 {
				return 0, fmt.Errorf("key %q %w %d", SpecKey(ruleKey), ErrChanged, specCAS)
			}
		}
		return 0, fmt.Errorf("write %q and %q: transaction refused: %s", SpecKey(ruleKey), ruleKey, txnErrors(resp))
	}
	var index uint64
	for _, r := range resp.Results {
		if r.KV != nil {
			index = max(index, r.KV.ModifyIndex)
		}
	}
	return index, nil
}

// txnErrors joins the messages of a refused transaction.
func txnErrors(resp *api.TxnResponse) string {
	if resp == nil || len(resp.Errors) == 0 {
		return "no reason given"
	}
	s := ""
	for i, e := range resp.Errors {
		if i > 0 {
			s += "; "
		}
		s += fmt.Sprintf("op %d: %s", e.OpIndex, e.What)
	}
	return s
}
