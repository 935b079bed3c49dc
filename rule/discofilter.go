package rule

import (
	"strconv"
	"strings"
)

// HostFilter is the <discovery> section's <blacklist> or <whitelist> (a
// section holds at most one of them), read as Nepxion's XmlConfigParser
// reads it and applied as its HostFilterDiscoveryListener applies it: a
// caller sees a provider's instances whose host starts with none of the
// listed values (blacklist), or only those whose host starts with one of
// them (whitelist). The values are prefixes of the instance's host, the
// address without the port: "10.10" matches 10.10.1.2, and "10.0.0.1"
// matches 10.0.0.12 too.
//
//	<blacklist filter-value="10.10;11.11">
//	  <service service-name="b" filter-value="172.16"/>
//	</blacklist>
type HostFilter struct {
	// Whitelist is true for <whitelist>, false for <blacklist>.
	Whitelist bool
	// Hosts is the element's filter-value: prefixes for every provider.
	Hosts []string
	// Services are the <service> entries: prefixes for one provider, on top
	// of Hosts. A service named twice keeps its last entry, at the place
	// of its first (Nepxion's filter map).
	Services []ServiceHosts
}

// ServiceHosts is one <service service-name="..." filter-value="..."/>
// entry of a host filter.
type ServiceHosts struct {
	Service string
	// Hosts lists the entry's prefixes; nil when it has no filter-value.
	Hosts []string
}

// RegionFilter is one <discovery><region><service> entry: the provider
// regions a consumer in some regions may call.
//
//	<region>
//	  <service consumer-service-name="a" provider-service-name="b"
//	           consumer-region-value="dev" provider-region-value="dev"/>
//	</region>
type RegionFilter struct {
	Consumer, Provider string
	// ConsumerRegions lists the consumer regions the entry applies to;
	// empty means every region.
	ConsumerRegions []string
	// ProviderRegions lists the provider regions those may call; empty
	// means the entry allows nothing by itself.
	ProviderRegions []string
}

// DefaultRegion is the region of a caller or an instance that declares
// none, Nepxion's "default" (DiscoveryConstant.DEFAULT), as the region
// filter reads it.
const DefaultRegion = "default"

// HostsFor resolves the host filter for a provider, as Nepxion's
// HostFilterDiscoveryListener does: the element's own prefixes, then those
// of the provider's <service> entry, separated by ';'; "" when there are
// none (no filter). whitelist says how to read them. Providers are
// compared without regard to case, as the section's other entries are.
func (d *Discovery) HostsFor(provider string) (hosts string, whitelist bool) {
	h := d.Hosts
	if h == nil {
		return "", false
	}
	var b strings.Builder
	add := func(l []string) {
		for _, s := range l {
			if b.Len() > 0 {
				b.WriteByte(';')
			}
			b.WriteString(s)
		}
	}
	add(h.Hosts)
	for _, s := range h.Services {
		if provider != "" && strings.EqualFold(s.Service, provider) {
			add(s.Hosts)
		}
	}
	return b.String(), h.Whitelist
}

// RegionsFor resolves the <region> entries for a caller (consumer service
// and region) and a provider, as Nepxion's RegionFilterDiscoveryListener
// does. It returns the provider regions the caller may call, separated by
// ';'; "" means no restriction (no entry names the pair, or the entries
// that apply list no provider region), ";" means none (entries name the
// pair but none applies to the caller's region). A caller without a region
// is in DefaultRegion, as in Nepxion; an anonymous caller (consumer "") is
// not restricted. Consumers and regions are compared exactly, providers
// without regard to case, as in Nepxion.
func (d *Discovery) RegionsFor(consumer, consumerRegion, provider string) string {
	if consumer == "" || provider == "" || len(d.Regions) == 0 {
		return ""
	}
	if consumerRegion == "" {
		consumerRegion = DefaultRegion
	}
	return allowedFor(d.Regions, regionPair, consumer, consumerRegion, provider)
}

// hostsZero reports whether the host filter filters nothing.
func (h *HostFilter) hostsZero() bool {
	if h == nil || len(h.Hosts) > 0 {
		return h == nil
	}
	for _, s := range h.Services {
		if len(s.Hosts) > 0 {
			return false
		}
	}
	return true
}

// setService records a <service> entry: a service named again replaces
// its earlier entry in place, as Nepxion's LinkedHashMap.put does.
func (h *HostFilter) setService(name string, hosts []string) {
	for i := range h.Services {
		if h.Services[i].Service == name {
			h.Services[i].Hosts = hosts
			return
		}
	}
	h.Services = append(h.Services, ServiceHosts{Service: name, Hosts: hosts})
}

// xHostFilter reads a <blacklist> or <whitelist> element of <discovery>.
// Nepxion accepts one of them per section and requires service-name on
// each <service>.
func xHostFilter(k *xnode, path string, rd *rawDiscovery, raw *rawRule) error {
	if rd.d.Hosts != nil {
		return invalid(k.at, path, "a second <blacklist> or <whitelist>: Nepxion allows one of them")
	}
	h := &HostFilter{Whitelist: k.name == "whitelist"}
	if v, ok := xOptional(k, "filter-value"); ok {
		h.Hosts = splitList(v)
	}
	xIgnoreAttrs(k, path, []string{"filter-value"}, raw)
	for i, s := range k.kids {
		spath := path + "/" + s.name + "[" + strconv.Itoa(i+1) + "]"
		if s.name != "service" {
			raw.ignore(path + "/" + s.name)
			continue
		}
		name, err := xRequired(s, spath, "service-name")
		if err != nil {
			return err
		}
		var hosts []string
		if v, ok := xOptional(s, "filter-value"); ok {
			hosts = splitList(v)
		}
		xIgnoreAttrs(s, spath, []string{"service-name", "filter-value"}, raw)
		h.setService(name, hosts)
	}
	rd.d.Hosts = h
	return nil
}

// xRegionFilters reads the <region> element of <discovery>; Nepxion
// requires both service names on each <service>.
func xRegionFilters(k *xnode, path string, rd *rawDiscovery, raw *rawRule) error {
	xIgnoreAttrs(k, path, nil, raw)
	return xPairFilters(k, path, &regionNames, raw, rd.addRegion)
}

// nepxionStrings reads a JSON list of strings (null: nil), dropping blanks
// as splitList does.
func nepxionStrings(n *tnode, path string) ([]string, error) {
	var list []string
	err := nepxionList(n, path, func(ip string, item *tnode) error {
		s, err := nepxionString(item, ip)
		if s != "" {
			list = append(list, s)
		}
		return err
	})
	return list, err
}

// nepxionHostFilter reads the hostFilterEntity of Nepxion's JSON form:
// filterType (BLACKLIST or WHITELIST, in any case), filterValueList and
// filterMap (service -> list).
func nepxionHostFilter(n *tnode, path string, rd *rawDiscovery, raw *rawRule) error {
	h := &HostFilter{}
	typed := false
	err := eachKnownKey(n, path, []string{"filterType", "filterValueList", "filterMap"}, raw, func(k string, v *tnode) error {
		p := path + "/" + k
		switch k {
		case "filterType":
			s, err := nepxionString(v, p)
			if err != nil {
				return err
			}
			switch strings.ToLower(s) {
			case "blacklist":
			case "whitelist":
				h.Whitelist = true
			default:
				return invalid(v.at, p, "unknown filter type "+strconv.Quote(s)+" (want BLACKLIST or WHITELIST)")
			}
			typed = true
		case "filterValueList":
			l, err := nepxionStrings(v, p)
			h.Hosts = l
			return err
		default:
			if v.kind == tNull {
				return nil
			}
			return eachKey(v, p, nil, func(svc string, l *tnode, _ pos) error {
				hosts, err := nepxionStrings(l, p+"/"+svc)
				h.setService(trimSpace(svc), hosts)
				return err
			})
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !typed {
		return invalid(n.at, path, "missing filterType (BLACKLIST or WHITELIST)")
	}
	rd.d.Hosts = h
	return nil
}

// nepxionRegionFilter reads the regionFilterEntity of Nepxion's JSON form:
// regionEntityMap (consumer -> RegionEntity list).
func nepxionRegionFilter(n *tnode, path string, rd *rawDiscovery, raw *rawRule) error {
	return nepxionPairFilters(n, path, &regionNames, raw, rd.addRegion)
}

// hostFilterEntityNode writes h as Nepxion's HostFilterEntity.
func hostFilterEntityNode(h *HostFilter) *tnode {
	typ := "BLACKLIST"
	if h.Whitelist {
		typ = "WHITELIST"
	}
	n := obj().add("filterType", str(typ))
	if h.Hosts != nil {
		n.add("filterValueList", strList(h.Hosts))
	}
	m := obj()
	for _, s := range h.Services {
		if s.Hosts == nil {
			m.add(s.Service, &tnode{kind: tNull})
		} else {
			m.add(s.Service, strList(s.Hosts))
		}
	}
	return n.add("filterMap", m)
}
