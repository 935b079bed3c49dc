package rule

import (
	"errors"
	"strconv"
	"strings"
)

// Discovery is Nepxion's <discovery> section (its <version>, <weight>,
// <region>, <blacklist> and <whitelist> children), read as Nepxion's
// XmlConfigParser reads it. It depends on the calling service:
// [Discovery.For], [Discovery.RegionsFor] and [Discovery.HostsFor] resolve
// it for one caller and one provider. The section itself is kept as
// written, so the encoders write it back unchanged.
//
//	<discovery>
//	  <blacklist filter-value="10.10;11.11">
//	    <service service-name="b" filter-value="172.16"/>
//	  </blacklist>
//	  <version>
//	    <service consumer-service-name="a" provider-service-name="b"
//	             consumer-version-value="1.0" provider-version-value="1.0;1.1"/>
//	  </version>
//	  <region>
//	    <service consumer-service-name="a" provider-service-name="b"
//	             consumer-region-value="dev" provider-region-value="dev"/>
//	  </region>
//	  <weight>
//	    <service consumer-service-name="a" provider-service-name="b"
//	             provider-weight-value="1.0=90;1.1=10" type="version"/>
//	    <version provider-weight-value="1.0=90;1.1=10"/>
//	    <region provider-weight-value="dev=85;qa=15"/>
//	  </weight>
//	</discovery>
type Discovery struct {
	// Versions are the <version><service> entries: which provider versions
	// a consumer (in some versions) may call.
	Versions []VersionFilter
	// Weights are the <weight><service> entries.
	Weights []WeightFilter
	// VersionWeight and RegionWeight are <weight><version> and
	// <weight><region>: weights for every consumer and provider
	// ("1.0=90;1.1=10"), "" when absent.
	VersionWeight, RegionWeight string
	// Hosts is the <blacklist> or <whitelist>; nil when the section has
	// neither.
	Hosts *HostFilter
	// Regions are the <region><service> entries: which provider regions a
	// consumer (in some regions) may call.
	Regions []RegionFilter
}

// VersionFilter is one <discovery><version><service> entry.
type VersionFilter struct {
	Consumer, Provider string
	// ConsumerVersions lists the consumer versions the entry applies to;
	// empty means every version.
	ConsumerVersions []string
	// ProviderVersions lists the provider versions those may call; empty
	// means the entry allows nothing by itself.
	ProviderVersions []string
}

// WeightFilter is one <discovery><weight><service> entry.
type WeightFilter struct {
	// Type is TypeVersionWeight or TypeRegionWeight (type="version" or
	// "region").
	Type RouteType
	// Consumer is the calling service; "" for every caller.
	Consumer string
	Provider string
	// Weights is the provider-weight-value, "1.0=90;1.1=10".
	Weights string
}

// IsZero reports whether the section routes nothing.
func (d *Discovery) IsZero() bool {
	return len(d.Versions) == 0 && len(d.Weights) == 0 && d.VersionWeight == "" && d.RegionWeight == "" &&
		len(d.Regions) == 0 && d.Hosts.hostsZero()
}

// For resolves the section for a caller (consumer service and version) and
// a provider, as Nepxion's VersionFilterLoadBalanceListener and
// WeightEntityWrapper.getWeight do:
//
//   - versions lists the provider versions the caller may call, separated
//     by ';'. "" means no restriction: the caller declares no version, no
//     entry names the pair, or the matching entries list no provider
//     version. ";" means none: entries name the pair but none applies to
//     the caller's version.
//   - versionWeights and regionWeights are the weight lists that apply,
//     the caller's own entries first, then the entries for every caller,
//     then <weight><version> (<region>): a key takes its weight from the
//     first list that names it. "" when none applies.
//
// Providers are compared without regard to case, as Nepxion does.
func (d *Discovery) For(consumer, consumerVersion, provider string) (versions, versionWeights, regionWeights string) {
	if consumerVersion != "" {
		versions = allowedFor(d.Versions, versionPair, consumer, consumerVersion, provider)
	}
	versionWeights = d.weightsFor(TypeVersionWeight, consumer, provider, d.VersionWeight)
	regionWeights = d.weightsFor(TypeRegionWeight, consumer, provider, d.RegionWeight)
	return versions, versionWeights, regionWeights
}

// weightsFor merges the weight lists of type t that apply to the pair.
// Nepxion takes, for each list in turn, the first entry naming the
// provider, and the key's weight from it.
func (d *Discovery) weightsFor(t RouteType, consumer, provider, global string) string {
	var lists []string
	for _, c := range []string{consumer, ""} {
		if c == "" && consumer == "" && len(lists) > 0 {
			break
		}
		for _, w := range d.Weights {
			if w.Type == t && w.Consumer == c && strings.EqualFold(w.Provider, provider) {
				lists = append(lists, w.Weights)
				break
			}
		}
	}
	if global != "" {
		lists = append(lists, global)
	}
	if len(lists) <= 1 {
		if len(lists) == 0 {
			return ""
		}
		return lists[0]
	}
	var b strings.Builder
	seen := map[string]bool{}
	for _, l := range lists {
		for e := range strings.SplitSeq(l, ";") {
			k, _, _ := strings.Cut(e, "=")
			k = trimSpace(k)
			if k == "" || seen[k] {
				continue
			}
			seen[k] = true
			if b.Len() > 0 {
				b.WriteByte(';')
			}
			b.WriteString(trimSpace(e))
		}
	}
	return b.String()
}

// rawDiscovery is the section as read, before building.
type rawDiscovery struct {
	d   Discovery
	set bool
}

const pathDiscovery = "discovery"

// xDiscovery reads a <discovery> element. Nepxion rejects a second
// <version>, <region> or <weight> in it, both (or two) of <blacklist> and
// <whitelist>, a second <version> or <region> in <weight>, an entry without
// its required attributes and an unknown weight type; so does this.
func xDiscovery(sec *xnode, raw *rawRule) error {
	rd := &raw.discovery
	if rd.set {
		return invalid(sec.at, pathDiscovery, "duplicate <discovery> section")
	}
	rd.set = true
	seen := map[string]bool{}
	for _, k := range sec.kids {
		path := pathDiscovery + "/" + k.name
		switch k.name {
		case "version", "weight", "region":
			if seen[k.name] {
				return invalid(k.at, path, "duplicate <"+k.name+">")
			}
			seen[k.name] = true
		case "blacklist", "whitelist":
			if err := xHostFilter(k, path, rd, raw); err != nil {
				return err
			}
			continue
		default:
			raw.ignore(path)
			continue
		}
		if k.name == "region" {
			if err := xRegionFilters(k, path, rd, raw); err != nil {
				return err
			}
			continue
		}
		if k.name == "version" {
			if err := xVersionFilters(k, path, rd, raw); err != nil {
				return err
			}
			continue
		}
		if err := xWeightFilters(k, path, rd, raw); err != nil {
			return err
		}
	}
	return nil
}

// xRequired returns a required attribute, trimmed.
func xRequired(n *xnode, path, name string) (string, error) {
	for _, a := range n.attrs {
		if a.Name.Local == name {
			return trimSpace(a.Value), nil
		}
	}
	return "", invalid(n.at, path, "missing attribute "+name)
}

// xOptional returns an optional attribute, trimmed, and whether it is set.
func xOptional(n *xnode, name string) (string, bool) {
	for _, a := range n.attrs {
		if a.Name.Local == name {
			return trimSpace(a.Value), true
		}
	}
	return "", false
}

func xVersionFilters(k *xnode, path string, rd *rawDiscovery, raw *rawRule) error {
	return xPairFilters(k, path, &versionNames, raw, rd.addVersion)
}

func xWeightFilters(k *xnode, path string, rd *rawDiscovery, raw *rawRule) error {
	seen := map[string]bool{}
	for i, s := range k.kids {
		spath := path + "/" + s.name + "[" + strconv.Itoa(i+1) + "]"
		switch s.name {
		case "service":
			var w WeightFilter
			typ, err := xRequired(s, spath, "type")
			if err != nil {
				return err
			}
			if w.Type, err = weightType(typ, s.at, spath); err != nil {
				return err
			}
			w.Consumer, _ = xOptional(s, "consumer-service-name")
			if w.Provider, err = xRequired(s, spath, "provider-service-name"); err != nil {
				return err
			}
			if w.Weights, err = xRequired(s, spath, "provider-weight-value"); err != nil {
				return err
			}
			xIgnoreAttrs(s, spath, []string{"type", "consumer-service-name", "provider-service-name", "provider-weight-value"}, raw)
			rd.d.Weights = append(rd.d.Weights, w)
		case "version", "region":
			if seen[s.name] {
				return invalid(s.at, path+"/"+s.name, "duplicate <"+s.name+">")
			}
			seen[s.name] = true
			v, err := xRequired(s, path+"/"+s.name, "provider-weight-value")
			if err != nil {
				return err
			}
			xIgnoreAttrs(s, path+"/"+s.name, []string{"provider-weight-value"}, raw)
			if s.name == "version" {
				rd.d.VersionWeight = v
			} else {
				rd.d.RegionWeight = v
			}
		default:
			raw.ignore(path + "/" + s.name)
		}
	}
	return nil
}

// weightType reads a weight entry's type as Nepxion's WeightType.fromString
// does: "version" or "region", in any case.
func weightType(s string, at pos, path string) (RouteType, error) {
	switch strings.ToLower(s) {
	case "version":
		return TypeVersionWeight, nil
	case "region":
		return TypeRegionWeight, nil
	}
	return 0, invalid(at, path, "unknown weight type "+strconv.Quote(s)+" (want version or region)")
}

// splitList splits a ';' separated list as Nepxion's StringUtil.splitToList
// does, dropping blanks.
func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ";") {
		if f = trimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// treeDiscovery reads the <discovery> element a kept section of graylane's
// JSON or YAML notation holds: the encoders write kept XML sections as a
// string of XML (positions then count within that string). It reports
// whether it found one. A string that is not XML, or another kind of value,
// is kept unused.
func treeDiscovery(v *tnode, raw *rawRule) (bool, error) {
	if v.kind != tString || !strings.HasPrefix(trimSpace(v.text), "<") || len(v.text) > MaxDocumentSize {
		return false, nil
	}
	root, err := readXML([]byte("<rule>" + v.text + "</rule>"))
	if err != nil {
		return false, nil
	}
	found := false
	for _, sec := range root.kids {
		if sec.name != pathDiscovery {
			continue
		}
		if found {
			return true, invalid(v.at, pathDiscovery, "duplicate <discovery> section")
		}
		found = true
		if err := xDiscovery(sec, raw); err != nil {
			var e *Error
			if errors.As(err, &e) {
				// Positions inside the string would point nowhere in the
				// document: point at the string.
				e.Line, e.Column = v.at.line, v.at.col
			}
			return true, err
		}
	}
	return found, nil
}

// nepxionDiscovery reads the DiscoveryEntity of Nepxion's JSON form:
// hostFilterEntity (see nepxionHostFilter),
// versionFilterEntity.versionEntityMap (consumer -> VersionEntity list),
// regionFilterEntity.regionEntityMap (consumer -> RegionEntity list) and
// weightFilterEntity (version and region weights by consumer, for every
// consumer, and for every provider).
func nepxionDiscovery(n *tnode, raw *rawRule) error {
	const path = "discoveryEntity"
	rd := &raw.discovery
	rd.set = true
	if n.kind == tNull {
		return nil
	}
	fields := []string{"hostFilterEntity", "versionFilterEntity", "regionFilterEntity", "weightFilterEntity"}
	return eachKnownKey(n, path, fields, raw, func(k string, v *tnode) error {
		if v.kind == tNull {
			return nil
		}
		p := path + "/" + k
		switch k {
		case "hostFilterEntity":
			return nepxionHostFilter(v, p, rd, raw)
		case "regionFilterEntity":
			return nepxionRegionFilter(v, p, rd, raw)
		}
		if k == "versionFilterEntity" {
			return nepxionPairFilters(v, p, &versionNames, raw, rd.addVersion)
		}
		return nepxionWeightFilter(v, p, rd, raw)
	})
}

// nepxionByConsumer walks a map of consumer -> entity list.
func nepxionByConsumer(m *tnode, path string, fn func(path string, e *tnode) error) error {
	if m.kind == tNull {
		return nil
	}
	return eachKey(m, path, nil, func(c string, l *tnode, _ pos) error {
		return nepxionList(l, path+"/"+c, fn)
	})
}

func nepxionString(n *tnode, path string) (string, error) {
	s, _, err := scalar(n, path)
	return trimSpace(s), err
}

func nepxionWeightFilter(n *tnode, path string, rd *rawDiscovery, raw *rawRule) error {
	fields := []string{"versionWeightEntityMap", "versionWeightEntityList", "versionWeightEntity",
		"regionWeightEntityMap", "regionWeightEntityList", "regionWeightEntity"}
	return eachKnownKey(n, path, fields, raw, func(k string, v *tnode) error {
		p := path + "/" + k
		t := TypeVersionWeight
		if strings.HasPrefix(k, "region") {
			t = TypeRegionWeight
		}
		entry := func(ep string, e *tnode) error {
			w, err := nepxionWeightEntity(e, ep, t, raw)
			rd.d.Weights = append(rd.d.Weights, w)
			return err
		}
		switch {
		case strings.HasSuffix(k, "Map"):
			return nepxionByConsumer(v, p, entry)
		case strings.HasSuffix(k, "List"):
			return nepxionList(v, p, entry)
		}
		a, err := nepxionWeights(v, p, raw)
		if t == TypeVersionWeight {
			rd.d.VersionWeight = a.s
		} else {
			rd.d.RegionWeight = a.s
		}
		return err
	})
}

func nepxionWeightEntity(e *tnode, path string, t RouteType, raw *rawRule) (WeightFilter, error) {
	w := WeightFilter{Type: t}
	if e.kind != tObject {
		return w, wantKind(e, tObject, path)
	}
	err := eachKnownKey(e, path, []string{"consumerServiceName", "providerServiceName", "type", "weightMap"}, raw, func(k string, f *tnode) error {
		var err error
		switch k {
		case "consumerServiceName":
			w.Consumer, err = nepxionString(f, path+"/"+k)
		case "providerServiceName":
			w.Provider, err = nepxionString(f, path+"/"+k)
		case "type":
			var s string
			if s, err = nepxionString(f, path+"/"+k); err == nil && s != "" {
				w.Type, err = weightType(s, f.at, path+"/"+k)
			}
		}
		return err
	})
	if err != nil {
		return w, err
	}
	a, err := nepxionWeights(e, path, &rawRule{}) // the other fields were read above
	w.Weights = a.s
	return w, err
}

// discoveryEntityNode writes d as Nepxion's DiscoveryEntity (see
// nepxionDiscovery), for EncodeNepxionJSON: entries grouped by consumer as
// Nepxion's maps hold them, weights as numbers (an unreadable one as 0, a
// repeated key once, as graylane reads them).
func discoveryEntityNode(d *Discovery) *tnode {
	n := obj()
	if d.Hosts != nil {
		n.add("hostFilterEntity", hostFilterEntityNode(d.Hosts))
	}
	if len(d.Versions) > 0 {
		n.add("versionFilterEntity", pairFilterEntityNode(d.Versions, versionPair, &versionNames))
	}
	if len(d.Regions) > 0 {
		n.add("regionFilterEntity", pairFilterEntityNode(d.Regions, regionPair, &regionNames))
	}
	if len(d.Weights) == 0 && d.VersionWeight == "" && d.RegionWeight == "" {
		return n
	}
	w := obj()
	for _, t := range [...]RouteType{TypeVersionWeight, TypeRegionWeight} {
		prefix, enum, global := "version", "VERSION", d.VersionWeight
		if t == TypeRegionWeight {
			prefix, enum, global = "region", "REGION", d.RegionWeight
		}
		byConsumer, list := obj(), &tnode{kind: tArray}
		for _, f := range d.Weights {
			if f.Type != t {
				continue
			}
			e := obj()
			if f.Consumer != "" {
				e.add("consumerServiceName", str(f.Consumer))
			}
			e.add("providerServiceName", str(f.Provider)).add("type", str(enum)).add("weightMap", weightMapNode(f.Weights))
			if f.Consumer != "" {
				appendTo(byConsumer, f.Consumer, e)
			} else {
				list.kids = append(list.kids, e)
			}
		}
		w.add(prefix+"WeightEntityMap", byConsumer).add(prefix+"WeightEntityList", list)
		if global != "" {
			w.add(prefix+"WeightEntity", obj().add("weightMap", weightMapNode(global)))
		}
	}
	return n.add("weightFilterEntity", w)
}

// appendTo appends e to the list under key in an object of lists.
func appendTo(m *tnode, key string, e *tnode) {
	for i, k := range m.keys {
		if k == key {
			m.kids[i].kids = append(m.kids[i].kids, e)
			return
		}
	}
	m.add(key, &tnode{kind: tArray, kids: []*tnode{e}})
}

func strList(ss []string) *tnode {
	l := &tnode{kind: tArray}
	for _, s := range ss {
		l.kids = append(l.kids, str(s))
	}
	return l
}

// weightMapNode reads "k=w;k=w" as WeightEntityWrapper.parseWeightEntity
// does (unreadable or negative weights count 0) into a weightMap object.
func weightMapNode(s string) *tnode {
	m := obj()
	seen := map[string]bool{}
	for e := range strings.SplitSeq(s, ";") {
		k, v, _ := strings.Cut(e, "=")
		if k = trimSpace(k); k == "" || seen[k] {
			continue
		}
		seen[k] = true
		w, err := strconv.Atoi(trimSpace(v))
		if err != nil || w < 0 {
			w = 0
		}
		m.add(k, num(w))
	}
	return m
}
