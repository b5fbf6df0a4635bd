/* Layer 0 (base).
 * Geography. The one distance between two points that the
 * services use: great-circle (haversine) on a sphere of radius 6371 km. */
#ifndef TG_GEO_H
#define TG_GEO_H

#define TG_EARTH_RADIUS_KM 6371.0

/* Great-circle distance in km between two points given in degrees; NAN when
 * a coordinate is NAN. */
double tg_geo_distance_km(double lat1, double lon1, double lat2, double lon2);

#endif
