/*
 * driver_xen.c - the driver vmistub opens: Xen's (vmi/xen). The one file
 * of stub/ that names the hypervisor; the host tests link
 * tests/stub/driver_fake.c in its place (include/stub.h).
 */
#include <stdio.h>

#include "stub.h"
#include "vmi_xen.h"

#define MAX_DOMAINS 256

int
stub_driver_open(uint32_t domid, struct vmi_driver **out)
{
	return vmi_xen_open(domid, out);
}

int
stub_driver_domid_by_name(const char *name, uint32_t *domid)
{
	return vmi_xen_domid_by_name(name, domid);
}

int
stub_driver_list_domains(struct stub_domain *out, unsigned max)
{
	struct vmi_xen_domain doms[MAX_DOMAINS];
	int n = vmi_xen_list_domains(doms, max < MAX_DOMAINS ? max :
	    MAX_DOMAINS);

	for (int i = 0; i < n; i++) {
		out[i].domid = doms[i].domid;
		snprintf(out[i].name, sizeof(out[i].name), "%s", doms[i].name);
	}
	return n;
}
