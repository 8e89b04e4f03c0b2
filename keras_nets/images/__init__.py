"""Images: reading files safely (`files`), each model's evaluation transform (`transforms`) and
its `preprocess_input` as Keras layers (`layers`)."""
