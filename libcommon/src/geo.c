/* Great-circle distance (haversine). */
#include "tg/geo.h"

#include <math.h>

double tg_geo_distance_km(double lat1, double lon1, double lat2, double lon2) {
    const double rad = M_PI / 180.0;
    double dlat = (lat2 - lat1) * rad, dlon = (lon2 - lon1) * rad;
    double h = sin(dlat / 2) * sin(dlat / 2) +
               cos(lat1 * rad) * cos(lat2 * rad) * sin(dlon / 2) * sin(dlon / 2);
    /* Rounding can push h of antipodal points just above 1. */
    return 2 * TG_EARTH_RADIUS_KM * asin(sqrt(h > 1 ? 1 : h)); /* NAN stays NAN */
}
