// Declares the Strimzi model's `@Pattern` constraint (the operator's crd-annotations artifact is
// not published), so StrimziCheck can read it from the api classes by reflection.
package io.strimzi.crdgenerator.annotations;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

@Retention(RetentionPolicy.RUNTIME)
@Target({ElementType.METHOD, ElementType.FIELD})
public @interface Pattern {
    String value();
}
